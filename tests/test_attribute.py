"""attribute and discover-motifs on real data: the CTCF model's held-out chr22 CTCF peaks give a
TF-MoDISco pattern matching JASPAR's CTCF cluster; ISM, grad-x-input and integrated gradients
agree where they should; contributions fall on a planted motif; outputs; bad input."""

import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pyBigWig
import pytest
from scipy.stats import spearmanr

from deepgmap_core.attribution import (AttributionSettings, Attributor, observed, read_attributions,
                                       region_windows_around)
from deepgmap_core.cli.attribute import main as attribute
from deepgmap_core.cli.discover_motifs import main as discover_motifs
from deepgmap_core.genome import ONE_HOT_ORDER, Genome, one_hot_encode, one_hot_windows
from deepgmap_core.models.files import ModelInfo, load_model, save_model
from deepgmap_core.motifs import read_motif_db
from deepgmap_core.peaks import read_peaks

MODELS = ["CTCF_chr20.keras", "CTCF_chr20_frss_bn.keras"]  # conv4-FRSS (paper recipe), conv3-FRSS-BN (default)


@pytest.fixture(scope="module", params=MODELS)
def model_and_sites(request, test_data):
    """A shipped CTCF model and one-hot windows around 30 of its held-out (chr22) CTCF peaks."""
    model, info = load_model(str(test_data / request.param), compile=False)
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        regions = region_windows_around(read_peaks(str(test_data / "CTCF.bed")), genome, info.window,
                                        {"chr22"})
        x = one_hot_windows(genome, regions.chroms[:30], regions.starts[:30], regions.window)
    return model, x


def contributions(model, x, method, **settings):
    hypothetical, completeness = Attributor(model, AttributionSettings(method=method, **settings))(
        x, np.random.default_rng(0))
    return observed(hypothetical, x)[..., 0], completeness


def test_ism_and_grad_x_input_agree_on_real_ctcf_sites(model_and_sites):
    """Per-window rank correlation of the per-base contributions. ISM is exact; the gradient is its
    first-order approximation, which a ReLU network bends away from on most bases of little
    weight: 0.57 (conv4-FRSS) and 0.69 (conv3-FRSS-BN) measured as medians, 0.02 when each window
    is paired with another window's ISM (no agreement). 0.4 keeps a clear margin from both."""
    model, x = model_and_sites
    gradient_values, _ = contributions(model, x, "grad-x-input")
    ism_values, _ = contributions(model, x, "ism", batch_size=512)
    rho = np.array([spearmanr(gradient_values[i], ism_values[i])[0] for i in range(len(x))])
    unrelated = np.array([spearmanr(gradient_values[i], ism_values[i - 1])[0] for i in range(len(x))])
    print(f"grad-x-input vs ISM rank correlation: median {np.median(rho):.3f} (min {rho.min():.3f}); "
          f"unrelated windows {np.median(unrelated):.3f}")
    assert np.median(rho) > 0.4 and np.median(unrelated) < 0.15
    # Both see the same top base in most CTCF windows' strongest 20 bases.
    top = [len(np.intersect1d(np.argsort(-g)[:20], np.argsort(-i)[:20])) for g, i in zip(gradient_values, ism_values)]
    assert np.median(top) >= 8


def test_integrated_gradients_are_complete_and_converge(model_and_sites):
    """The contributions of a window add up to logit(window) - logit(reference) up to the path's
    discretisation: the error is small against that difference and shrinks with more steps."""
    model, x = model_and_sites
    errors = {}
    for steps in (4, 32):
        _, completeness = contributions(model, x[:10], "integrated-gradients", steps=steps, references=2)
        error, difference = np.abs(completeness[..., 0])
        errors[steps] = np.median(error) / np.median(difference)
    print(f"integrated gradients, median completeness error / median logit difference: {errors}")
    assert errors[32] < 0.15 and errors[32] < errors[4]


def test_contributions_fall_on_a_planted_ctcf_motif(model_and_sites, test_data):
    """The JASPAR CTCF cluster's consensus inserted into the middle of random sequence: most of the
    positive contribution lies on the inserted bases (their share of the length is 12/200)."""
    model, x = model_and_sites
    names, matrices = read_motif_db(str(test_data / "JASPAR2024_CORE_clusters.meme"))
    ctcf = matrices[next(i for i, name in enumerate(names) if name.startswith("C055"))]
    consensus = "".join(np.array(list("ACGT"))[ctcf.argmax(axis=1)])
    window, rng = x.shape[1], np.random.default_rng(1)
    start = (window - len(consensus)) // 2
    sequences = ["".join(rng.choice(list(ONE_HOT_ORDER), window)) for _ in range(20)]
    planted = np.stack([one_hot_encode(s[:start] + consensus + s[start + len(consensus):]) for s in sequences])
    values, _ = contributions(model, planted, "grad-x-input")
    positive = np.clip(values, 0, None)
    share = positive[:, start:start + len(consensus)].sum(axis=1) / positive.sum(axis=1)
    print(f"share of positive contribution on the {len(consensus)} planted bases: median {np.median(share):.2f}")
    assert np.median(share) > 0.5


@pytest.fixture(scope="module")
def attributions_of(test_data, tmp_path_factory):
    """model file name -> (HDF5, CTCF track) of deepgmap-attribute on the held-out (chr22) CTCF
    peaks of that shipped model, each made once."""
    made = {}

    def attributions(model_name):
        if model_name not in made:
            folder = tmp_path_factory.mktemp("attribute")
            h5, tracks = folder / "ctcf.h5", folder / "tracks"
            assert attribute(["--model", str(test_data / model_name), "--genome", str(test_data / "genome.fa.gz"),
                              "--regions", str(test_data / "CTCF.bed"), "-o", str(h5), "--tracks", str(tracks)]) == 0
            made[model_name] = h5, tracks / "CTCF.contributions.bw"
        return made[model_name]
    return attributions


@pytest.fixture(scope="module")
def held_out_attributions(attributions_of):
    return attributions_of(MODELS[0])


def test_attribute_writes_held_out_windows_and_their_tracks(held_out_attributions, test_data):
    h5, track = held_out_attributions
    one_hot, hypothetical, chroms, starts, attributes = read_attributions(str(h5))
    peaks = read_peaks(str(test_data / "CTCF.bed")).by_chrom["chr22"]
    assert set(chroms) == {"chr22"} and len(starts) == len(peaks.starts)  # only the held-out chromosome
    np.testing.assert_array_equal(starts, np.sort(peaks.summits - 100))
    assert attributes["method"] == "grad-x-input" and "deepgmap-attribute" in attributes["command"]
    np.testing.assert_array_equal(one_hot.sum(axis=2) <= 1, True)
    with h5py.File(h5) as store:  # what modisco-lite's `modisco motifs -i` reads
        assert store["hyp_scores"].shape == store["input_seqs"].shape == (len(starts), 200, 4)
    observed_values = (one_hot * hypothetical).sum(axis=2)
    with pyBigWig.open(str(track)) as bigwig:
        # A window that overlaps no other one has exactly its own values in the track.
        alone = np.flatnonzero(np.diff(starts, prepend=-10**9, append=10**12)[:-1] > 200)
        alone = alone[np.diff(starts, append=10**12)[alone] > 200]
        assert len(alone) > 20
        for i in alone[:10]:
            np.testing.assert_allclose(bigwig.values("chr22", int(starts[i]), int(starts[i]) + 200),
                                       observed_values[i], rtol=1e-5, atol=1e-6)


def test_overlapping_windows_share_the_track_as_their_mean(test_data, tmp_path):
    regions, h5, tracks = tmp_path / "r.bed", tmp_path / "a.h5", tmp_path / "tracks"
    regions.write_text("chr22\t20100000\t20100200\nchr22\t20100150\t20100350\n")
    assert attribute(["--model", str(test_data / "CTCF_chr20.keras"), "--genome", str(test_data / "genome.fa.gz"),
                      "--regions", str(regions), "-o", str(h5), "--tracks", str(tracks), "--method", "ism"]) == 0
    one_hot, hypothetical, _, starts, attributes = read_attributions(str(h5))
    assert starts.tolist() == [20100000, 20100150] and attributes["method"] == "ism"
    values = (one_hot * hypothetical).sum(axis=2)
    with pyBigWig.open(str(tracks / "CTCF.contributions.bw")) as bigwig:
        track = np.array(bigwig.values("chr22", 20100000, 20100350))
    np.testing.assert_allclose(track[:150], values[0, :150], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(track[150:200], (values[0, 150:] + values[1, :50]) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(track[200:], values[1, 50:], rtol=1e-5, atol=1e-6)


def test_narrowpeak_summits_out_of_start_order_give_sorted_windows_and_a_track(test_data, tmp_path):
    """narrowPeak records sorted by start whose summits are not: the windows (and the bigWig, which
    must be written in order) follow the summits."""
    regions, tracks = tmp_path / "r.narrowPeak", tmp_path / "tracks"
    regions.write_text("chr22\t20100000\t20101000\tlong\t0\t.\t0\t-1\t-1\t900\n"
                       "chr22\t20100100\t20100300\tshort\t0\t.\t0\t-1\t-1\t50\n")
    assert attribute(["--model", str(test_data / "CTCF_chr20.keras"), "--genome", str(test_data / "genome.fa.gz"),
                      "--regions", str(regions), "-o", str(tmp_path / "a.h5"), "--tracks", str(tracks)]) == 0
    _, _, _, starts, _ = read_attributions(str(tmp_path / "a.h5"))
    assert starts.tolist() == [20100150 - 100, 20100900 - 100]
    with pyBigWig.open(str(tracks / "CTCF.contributions.bw")) as bigwig:
        assert bigwig.intervals("chr22")[0][0] == 20100050


@pytest.mark.parametrize("model_name", MODELS)
def test_top_modisco_pattern_of_held_out_ctcf_peaks_is_ctcf(attributions_of, model_name, test_data, tmp_path):
    """The issue's check on real data: TF-MoDISco on the held-out chr22 CTCF peaks finds the CTCF
    motif first, Tomtom q < 0.05 against the JASPAR 2024 CTCF cluster (C055), for the paper
    recipe's conv4-FRSS and the default recipe's conv3-FRSS-BN."""
    h5, _ = attributions_of(model_name)
    out = {name: tmp_path / name for name in ("p.meme", "t.tsv", "r.html", "s.bed")}
    assert discover_motifs(["-i", str(h5), "-o", str(out["p.meme"]), "--motif-db",
                            str(test_data / "JASPAR2024_CORE_clusters.meme"), "--tomtom", str(out["t.tsv"]),
                            "--report", str(out["r.html"]), "--seqlets", str(out["s.bed"])]) == 0
    names, matrices = read_motif_db(str(out["p.meme"]))
    assert names[0] == "pos_pattern_1"
    rows = [line.split("\t") for line in out["t.tsv"].read_text().splitlines() if not line.startswith("#")]
    best = next(row for row in rows if row[0] == "pos_pattern_1")
    assert best[1].startswith("C055:CTCF") and float(best[4]) < 0.05
    seqlets = [line.split("\t") for line in out["s.bed"].read_text().splitlines() if not line.startswith("#")]
    ours = [s for s in seqlets if s[3] == "pos_pattern_1"]
    assert len(ours) >= 20 and all(s[0] == "chr22" and s[5] in "+-" for s in ours)
    # Seqlets lie inside the attributed windows, i.e. around the held-out peaks.
    peaks = read_peaks(str(test_data / "CTCF.bed")).by_chrom["chr22"]
    starts = np.array([int(s[1]) for s in ours])
    assert (np.abs(starts[:, None] - peaks.summits[None]).min(axis=1) <= 100).all()
    html = out["r.html"].read_text()
    assert html.count("<img") >= 2 * len(names) and "C055:CTCF" in html and "chr22:" in html


def test_modisco_lite_reads_the_attributions_file(held_out_attributions, tmp_path):
    h5, _ = held_out_attributions
    modisco = os.path.join(os.path.dirname(sys.executable), "modisco")
    result = subprocess.run([modisco, "motifs", "-i", str(h5), "-n", "500", "-w", "200", "-o", str(tmp_path / "m.h5")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    with h5py.File(tmp_path / "m.h5") as store:
        assert len(store["pos_patterns"]) >= 1


@pytest.mark.parametrize("case, expected", [
    ("unknown_chrom", "chromosome chrX is not in the genome"),
    ("empty_regions", "empty regions file"),
    ("no_held_out_region", "no region on chr22 (--chroms)"),
    ("short_chromosome", "is shorter than the model's 200 bp window"),
    ("not_a_sequence_model", "does not read one one-hot sequence of 200 bp"),
    ("no_output", "nothing to write"),
])
def test_attribute_bad_input_gives_one_line(test_data, tmp_path, capsys, case, expected):
    regions, genome, model = tmp_path / "r.bed", str(test_data / "genome.fa.gz"), str(test_data / "CTCF_chr20.keras")
    regions.write_text("chr22\t20100000\t20100300\n")
    if case == "unknown_chrom":
        regions.write_text("chrX\t100\t300\n")
    elif case == "empty_regions":
        regions.write_text("")
    elif case == "no_held_out_region":
        regions.write_text("chr20\t100000\t100300\n")
    elif case == "short_chromosome":
        (tmp_path / "g.fa").write_text(">chr22\n" + "ACGT" * 25 + "\n")
        genome = str(tmp_path / "g.fa")
    elif case == "not_a_sequence_model":
        inputs = keras.Input((12,))
        model = str(tmp_path / "dense.keras")
        save_model(keras.Model(inputs, keras.layers.Dense(1, name="predictions")(inputs)), model,
                   ModelInfo(["CTCF"], 200, "dense", "AGCT", split={"valid": ["chr22"]}))
    out, tracks = tmp_path / "out.h5", tmp_path / "tracks"
    outputs = [] if case == "no_output" else ["-o", str(out), "--tracks", str(tracks)]
    assert attribute(["--model", model, "--genome", genome, "--regions", str(regions)] + outputs) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert expected in error[-1] and "Traceback" not in "\n".join(error)
    assert not out.exists() and not (tracks.exists() and any(tracks.iterdir()))


@pytest.mark.parametrize("case, expected", [
    ("not_h5", "not an HDF5 file"),
    ("unknown_class", "no class 'H3K4me3'"),
])
def test_discover_motifs_bad_input_gives_one_line(held_out_attributions, tmp_path, capsys, case, expected):
    h5, _ = held_out_attributions
    argv = ["-i", str(h5), "-o", str(tmp_path / "p.meme")]
    if case == "not_h5":
        (tmp_path / "x.h5").write_text("hello")
        argv[1] = str(tmp_path / "x.h5")
    elif case == "unknown_class":
        argv += ["--class", "H3K4me3"]
    assert discover_motifs(argv) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert expected in error[-1] and "Traceback" not in "\n".join(error)
    assert not (tmp_path / "p.meme").exists()


def test_too_few_seqlets_is_a_result_not_an_error(held_out_attributions, test_data, tmp_path, capsys):
    """Five windows give no pattern: a warning and outputs that say so, exit 0 (a workflow goes on)."""
    h5, _ = held_out_attributions
    few = tmp_path / "few.h5"
    with h5py.File(h5) as source, h5py.File(few, "w") as store:
        for key in ("input_seqs", "hypothetical_contributions/CTCF", "windows/chrom", "windows/start"):
            store.create_dataset(key, data=source[key][:5])
        store.attrs.update(dict(source.attrs))
    out = {name: tmp_path / name for name in ("p.meme", "t.tsv", "r.html")}
    assert discover_motifs(["-i", str(few), "-o", str(out["p.meme"]), "--motif-db",
                            str(test_data / "JASPAR2024_CORE_clusters.meme"), "--tomtom", str(out["t.tsv"]),
                            "--report", str(out["r.html"])]) == 0
    assert "warning: TF-MoDISco found no pattern" in capsys.readouterr().err
    assert "MEME version 4" in out["p.meme"].read_text() and "MOTIF" not in out["p.meme"].read_text()
    assert out["t.tsv"].read_text().splitlines()[-1].startswith("#query") and "No pattern" in out["r.html"].read_text()
