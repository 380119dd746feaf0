"""motif-extract: kernels as a valid MEME file, Tomtom finding a planted JASPAR matrix, bad input."""

import dataclasses

import keras
import numpy as np
import pytest
from Bio import motifs as bio_motifs
from memelite.io import read_meme

from deepgmap_core.cli.motif_extract import main
from deepgmap_core.models.build import build_model
from deepgmap_core.models.files import ModelInfo, save_model
from deepgmap_core.motifs import MEME_ORDER, read_motif_db

INFO = ModelInfo(class_names=["CTCF"], window=1000, model="basset", one_hot_order="AGCT")


@pytest.fixture(scope="module")
def planted_model(test_data, tmp_path_factory):
    """A Basset model (19 bp first kernels) whose kernel 5 holds the JASPAR CTCF cluster's matrix."""
    names, matrices = read_motif_db(str(test_data / "JASPAR2024_CORE_clusters.meme"))
    ctcf = matrices[[i for i, n in enumerate(names) if n.startswith("C055")][0]]
    keras.utils.set_random_seed(3)
    model = build_model("basset", 1, 1000, 0.05)
    layer = model.get_layer("conv1")
    kernel = keras.ops.convert_to_numpy(layer.kernel).copy()
    width = min(len(ctcf), kernel.shape[0])
    planted = np.full((kernel.shape[0], 4), np.log(0.25))
    planted[:width] = np.log(np.clip(ctcf[:width], 1e-3, 1))[:, MEME_ORDER]  # A,C,G,T -> A,G,C,T
    kernel[:, :, 4] = planted / 100
    layer.kernel.assign(kernel)
    path = str(tmp_path_factory.mktemp("model") / "basset.keras")
    save_model(model, path, INFO)
    return path, kernel


def test_meme_output_parses_with_memelite_and_biopython(planted_model, tmp_path):
    path, kernel = planted_model
    out = tmp_path / "k.meme"
    assert main(["--model", path, "-o", str(out)]) == 0
    parsed = read_meme(str(out))
    assert list(parsed) == [f"conv1_kernel{i + 1}" for i in range(kernel.shape[2])]
    for matrix in parsed.values():
        assert np.asarray(matrix).shape == (4, kernel.shape[0])
        np.testing.assert_allclose(np.asarray(matrix).sum(axis=0), 1, atol=1e-5)
    with open(out) as handle:
        record = bio_motifs.parse(handle, "minimal")
    assert len(record) == kernel.shape[2] and all(motif.length == kernel.shape[0] for motif in record)
    fifth = np.array([record[4].pwm[base] for base in "ACGT"])
    assert fifth.argmax(axis=0).tolist() == np.asarray(parsed["conv1_kernel5"]).argmax(axis=0).tolist()


def test_tomtom_finds_the_planted_ctcf_matrix_first(planted_model, test_data, tmp_path):
    path, _ = planted_model
    out, matches = tmp_path / "k.meme", tmp_path / "tomtom.tsv"
    logos = tmp_path / "logos.html"
    assert main(["--model", path, "-o", str(out), "--motif-db", str(test_data / "JASPAR2024_CORE_clusters.meme"),
                 "--tomtom", str(matches), "--top", "3", "--logos", str(logos)]) == 0
    page = logos.read_text()
    assert page.count("data:image/png;base64,") == 2 * 15  # Basset x0.05: 15 kernels, each beside its match
    assert 'alt="conv1_kernel5"' in page and "C055:CTCF" in page
    rows = [line.rstrip("\n").split("\t") for line in open(matches) if not line.startswith("#")]
    planted = [r for r in rows if r[0] == "conv1_kernel5"]
    assert len(planted) == 3 and planted[0][1].startswith("C055") and "CTCF" in planted[0][1]
    assert float(planted[0][4]) < 0.05 and planted[0][6] in "+-"
    assert float(planted[0][2]) <= min(float(r[2]) for r in rows)


def ctcf_kernels(model, scale, test_data, tmp_path):
    """(q-value, kernel) of the kernels whose best JASPAR 2024 cluster is CTCF (C055), best first."""
    matches = tmp_path / f"tomtom{scale}.tsv"
    assert main(["--model", str(test_data / model), "-o", str(tmp_path / "k.meme"), "--scale", scale,
                 "--motif-db", str(test_data / "JASPAR2024_CORE_clusters.meme"), "--tomtom", str(matches),
                 "--top", "1"]) == 0
    rows = [line.rstrip("\n").split("\t") for line in open(matches) if not line.startswith("#")]
    return sorted((float(r[4]), r[0]) for r in rows if r[1] == "C055:CTCF:C2H2_ZF" and float(r[4]) < 0.05)


@pytest.mark.parametrize("model", ["CTCF_chr20.keras", "CTCF_chr20_frss_bn.keras"])
def test_with_the_auto_scale_kernels_of_the_chr20_ctcf_models_match_ctcf(model, test_data, tmp_path):
    """Real data: the CTCF models of test-data, trained on hg19 chr20 CTCF windows (make_test_data.sh),
    have first-layer kernels whose best Tomtom match among the JASPAR 2024 clusters is CTCF (C055,
    q < 0.05) when read at --scale auto (1 / the weights' SD: 10 and 2.7 here); at the original's 100
    the matrices are nearly one-hot, and fewer kernels (none, as measured) match CTCF."""
    auto, original = ctcf_kernels(model, "auto", test_data, tmp_path), ctcf_kernels(model, "100", test_data, tmp_path)
    print(f"{model}: kernels best matching CTCF (C055) with q < 0.05: {len(auto)} at --scale auto, "
          f"{len(original)} at 100")
    assert auto and len(auto) > len(original)


@pytest.mark.parametrize("scale", ["0", "-1", "nan", "automatic"])
def test_a_scale_that_is_not_positive_or_auto_is_a_usage_error(planted_model, tmp_path, capsys, scale):
    path, _ = planted_model
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", path, "-o", str(tmp_path / "k.meme"), "--scale", scale])
    assert exit_info.value.code == 2 and "--scale" in capsys.readouterr().err


def test_min_ic_keeps_only_informative_kernels(planted_model, tmp_path):
    path, _ = planted_model
    out = tmp_path / "k.meme"
    assert main(["--model", path, "-o", str(out), "--min-ic", "10"]) == 0
    assert list(read_meme(str(out))) == ["conv1_kernel5"]


@pytest.mark.parametrize("case, expected", [
    ("empty_db", "no motifs"),
    ("malformed_db", "not a readable MEME motif file"),
    ("nan_in_real_db", "motif C055:CTCF:C2H2_ZF, row 1: a probability is negative or not a number"),
    ("dense_model", "no first convolution"),
    ("db_without_output", "need --motif-db"),
])
def test_bad_input_gives_one_line(planted_model, test_data, tmp_path, capsys, case, expected):
    path, _ = planted_model
    args = ["--model", path, "-o", str(tmp_path / "k.meme")]
    if case in ("empty_db", "malformed_db"):
        db = tmp_path / "db.meme"
        db.write_text("MEME version 4\n\nALPHABET= ACGT\n" if case == "empty_db" else
                      "MEME version 4\n\nMOTIF x\nletter-probability matrix: alength= 4 w= 2\n0.5 0.5\n")
        args += ["--motif-db", str(db), "--tomtom", str(tmp_path / "t.tsv")]
    elif case == "nan_in_real_db":  # JASPAR 2024 with one number of the CTCF cluster made nan
        text = (test_data / "JASPAR2024_CORE_clusters.meme").read_text()
        at = text.index("\n", text.index("letter-probability", text.index("MOTIF C055:"))) + 1
        end = text.index("\n", at)
        row = text[at:end]
        (tmp_path / "db.meme").write_text(text[:at] + row.replace(row.split()[0], "nan", 1) + text[end:])
        args += ["--motif-db", str(tmp_path / "db.meme"), "--tomtom", str(tmp_path / "t.tsv")]
    elif case == "dense_model":
        inputs = keras.Input((1000, 4))
        model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
        save_model(model, str(tmp_path / "dense.keras"), dataclasses.replace(INFO, model="dense"))
        args[1] = str(tmp_path / "dense.keras")
    else:
        args += ["--tomtom", str(tmp_path / "t.tsv")]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "k.meme").exists()


def test_activation_maximisation_increases_the_class_score_monotonically(test_data):
    from deepgmap_core.interpret import maximise_activation
    from deepgmap_core.models.files import load_model

    model, _ = load_model(str(test_data / "model.keras"), compile=False)
    for class_index in (0, None):  # CTCF against H3K4me3, and the product of both
        x, trace = maximise_activation(model, 1000, class_index, steps=60, record_every=5, seed=1)
        assert len(trace) == 12 and trace[-1] > trace[0]
        assert (np.diff(trace) >= -1e-6).all(), trace
        assert x.shape == (1, 1000, 4)


def test_activation_maximisation_cli_writes_fasta_and_fimo_hits(test_data, tmp_path, capsys):
    fasta, hits = tmp_path / "am.fa", tmp_path / "hits.tsv"
    args = ["--model", str(test_data / "model.keras"), "-o", str(tmp_path / "k.meme"), "--motif-db",
            str(test_data / "JASPAR2024_CORE_clusters.meme"), "--activation-max", "CTCF", "--am-out", str(fasta),
            "--am-steps", "20", "--am-hits", str(hits)]
    assert main(args) == 0
    lines = fasta.read_text().splitlines()
    assert lines[0].startswith(">activation_max_CTCF objective")
    sequence = "".join(lines[1:])
    assert len(sequence) == 1000 and set(sequence) <= set("ACGT")
    rows = [line.split("\t") for line in hits.read_text().splitlines()]
    assert rows[0] == ["#motif", "sequence", "start", "end", "strand", "score", "p_value"]
    assert all(r[1] == "activation_max_CTCF" and float(r[6]) <= 1e-4 for r in rows[1:])
    args[args.index("CTCF")] = "p53"
    assert main(args) == 1
    assert "the model's classes are CTCF, H3K4me3 (or 'all')" in capsys.readouterr().err


def test_connection_graph(test_data, tmp_path):
    from deepgmap_core.interpret import connection_strengths, strongest_links
    from deepgmap_core.models.files import load_model

    model, _ = load_model(str(test_data / "model.keras"), compile=False)
    names, matrices = connection_strengths(model)
    assert names == ["frss1", "frss2", "conv3", "conv4", "classes"]
    kernels = [keras.ops.convert_to_numpy(model.get_layer(n).kernel) for n in names[:-1]]
    np.testing.assert_allclose(matrices[0], kernels[1].sum(axis=0), rtol=1e-6)
    assert matrices[-1].shape == (kernels[-1].shape[2], 2)
    rows, cols = strongest_links(matrices[-1], 0.1, per_column=True)
    assert sorted(set(cols.tolist())) == [0, 1] and len(rows) == 2 * int(np.ceil(0.1 * kernels[-1].shape[2]))
    for column in (0, 1):  # into each class, the strongest filters by |strength|
        chosen = rows[cols == column]
        assert np.abs(matrices[-1][chosen, column]).min() >= np.sort(np.abs(matrices[-1][:, column]))[-len(chosen)]
    for name in ("graph.png", "graph.svg"):
        assert main(["--model", str(test_data / "model.keras"), "-o", str(tmp_path / "k.meme"),
                     "--connections", str(tmp_path / name)]) == 0
    assert (tmp_path / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "graph.svg").read_text()[:500]
