"""predict-bigwig with a small model trained on real chr20 windows: valid bigWigs on the real part
of chr22, bins equal to the mean of per-window predictions, evaluation equal to scikit-learn,
saliency equal to finite differences, peaks, bedGraph, another species, bad input."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pyBigWig  # noqa: E402
import pytest  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402

from deepgmap_core.cli.predict_bigwig import main  # noqa: E402
from deepgmap_core.genome import Genome, one_hot_windows, reverse_complement_one_hot  # noqa: E402
from deepgmap_core.interpret import class_logits  # noqa: E402
from deepgmap_core.models.files import load_model  # noqa: E402
from deepgmap_core.training import TrainSettings, train_model  # noqa: E402
from deepgmap_core.windows import read_windows_table  # noqa: E402
from finite_differences import saliency_by_finite_differences  # noqa: E402


@pytest.fixture(scope="module")
def model_path(test_data, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "model.keras")
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        train_model(genome, read_windows_table(str(test_data / "windows.tsv")),
                    TrainSettings(width_scale=0.1, epochs=1, steps_per_epoch=20, batch_size=50,
                                  max_valid_windows=200, seed=2), path, "test")
    return path


def intervals(path, chrom):
    with pyBigWig.open(path) as bw:
        return bw.chroms(), np.array(bw.intervals(chrom) or [], dtype=float).reshape(-1, 3)


def test_bigwigs_on_real_chr22_are_valid(model_path, shared_data, tmp_path):
    genome = str(shared_data / "hg19" / "chr22.fa.gz")
    assert main(["--model", model_path, "--genome", genome, "--outdir", str(tmp_path)]) == 0
    assert sorted(os.listdir(tmp_path)) == ["CTCF.bw", "H3K4me3.bw"]
    for name in ("CTCF.bw", "H3K4me3.bw"):
        chroms, table = intervals(str(tmp_path / name), "chr22")
        assert chroms == {"chr22": 51_304_566}
        starts, ends, values = table[:, 0], table[:, 1], table[:, 2]
        assert len(table) > 3000 and (ends > starts).all() and (starts[1:] >= ends[:-1]).all()
        assert ((values >= 0) & (values <= 1)).all()
        # Only the real 1 Mb of chr22 is sequence; the rest is N and gets no value.
        assert starts.min() >= 19_999_000 and ends.max() <= 21_001_000


def test_bin_values_are_means_of_per_window_predictions(model_path, test_data, tmp_path):
    assert main(["--model", model_path, "--genome", str(test_data / "genome.fa.gz"), "--chroms", "chr20",
                 "--outdir", str(tmp_path), "--rc-average"]) == 0
    model, _ = load_model(model_path)
    _, table = intervals(str(tmp_path / "CTCF.bw"), "chr20")
    picked = table[np.random.default_rng(0).choice(len(table), 5, replace=False)]
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        for start, _, value in picked:
            bin_index = int(start) // 300
            window_starts = [k * 300 for k in range(bin_index - 3, bin_index + 1) if k >= 0]
            x = one_hot_windows(genome, ["chr20"] * len(window_starts), window_starts, 1000)
            keep = [(x[i] == 0).all(axis=1).mean() <= 0.5 for i in range(len(x))]
            x = x[keep]
            both = (model.predict(x, verbose=0) + model.predict(np.ascontiguousarray(reverse_complement_one_hot(x)),
                                                                verbose=0)) / 2
            assert value == pytest.approx(float(both[:, 0].mean()), abs=1e-5)


def test_evaluation_equals_scikit_learn_on_the_same_coordinates(model_path, test_data, tmp_path):
    windows = str(test_data / "windows.tsv")
    assert main(["--model", model_path, "--genome", str(test_data / "genome.fa.gz"), "--chroms", "chr22",
                 "--outdir", str(tmp_path), "--evaluate", windows]) == 0
    rows = [line.rstrip("\n").split("\t") for line in open(tmp_path / "evaluation.tsv") if not line.startswith("#")]
    reported = {(r[0], r[1], r[2]): (float(r[3]), float(r[4])) for r in rows}
    table = read_windows_table(windows)
    model, _ = load_model(model_path)
    keep = float(table.metadata["keep_negatives"])
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        for split in ("train", "valid"):
            chosen = np.flatnonzero(table.splits == split)
            x = one_hot_windows(genome, table.chroms[chosen], table.starts[chosen], 1000)
            predictions = model.predict(x, verbose=0)
            labels = table.labels[chosen]
            weights = np.where((split == "train") & ~labels.any(axis=1), 1 / keep, 1.0)
            for i, name in enumerate(table.class_names):
                if not 0 < labels[:, i].sum() < len(labels):
                    assert np.isnan(reported[(split, "all", name)][1])
                    continue
                auroc = roc_auc_score(labels[:, i], predictions[:, i], sample_weight=weights)
                auprc = average_precision_score(labels[:, i], predictions[:, i], sample_weight=weights)
                assert reported[(split, "all", name)] == pytest.approx((auroc, auprc), abs=2e-6)
    assert ("train", "chr20", "CTCF") in reported
    html = open(tmp_path / "evaluation.html").read()
    assert "data:image/png;base64," in html and "Overfitting test" in html


def test_saliency_equals_finite_differences(model_path, test_data, tmp_path):
    regions = tmp_path / "regions.bed"
    regions.write_text("chr20\t2000000\t2001000\n")
    out = tmp_path / "out"
    assert main(["--model", model_path, "--genome", str(test_data / "genome.fa.gz"), "--regions", str(regions),
                 "--saliency", "--outdir", str(out)]) == 0
    with pyBigWig.open(str(out / "CTCF.saliency.bw")) as bw:
        saliency = np.array(bw.values("chr20", 2_000_000, 2_001_000))
    assert np.isfinite(saliency).all() and np.abs(saliency).max() > 0
    model, _ = load_model(model_path)
    logits = class_logits(model)
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        x = one_hot_windows(genome, ["chr20"], [2_000_000], 1000).astype(np.float32)
    for position in (10, 500, 990):
        finite = saliency_by_finite_differences(logits, x, position)
        assert saliency[position] == pytest.approx(finite, abs=2e-3 * max(1.0, np.abs(saliency).max()))


def test_peaks_out_and_bedgraph(model_path, test_data, tmp_path):
    assert main(["--model", model_path, "--genome", str(test_data / "genome.fa.gz"), "--chroms", "chr20",
                 "--outdir", str(tmp_path / "bg"), "--bedgraph", "--peaks-out", str(tmp_path / "peaks"),
                 "--threshold", "0.0"]) == 0
    lines = [line.split("\t") for line in open(tmp_path / "bg" / "CTCF.bedGraph")]
    values = np.array([float(f[3]) for f in lines])
    starts, ends = np.array([int(f[1]) for f in lines]), np.array([int(f[2]) for f in lines])
    assert (starts[1:] >= ends[:-1]).all() and ((values >= 0) & (values <= 1)).all()
    peaks = [line.rstrip("\n").split("\t") for line in open(tmp_path / "peaks" / "CTCF.narrowPeak")]
    # Threshold 0: every run of adjacent bins is one region.
    runs = 1 + int((starts[1:] != ends[:-1]).sum())
    assert len(peaks) == runs
    for row in peaks:
        assert len(row) == 10 and 0 <= int(row[4]) <= 1000 and 0 <= int(row[9]) < int(row[2]) - int(row[1])


def test_another_species(model_path, shared_data, tmp_path):
    genome = str(shared_data / "sacCer3" / "sacCer3.fa.gz")
    assert main(["--model", model_path, "--genome", genome, "--chroms", "chrI", "chrM", "--outdir", str(tmp_path)]) == 0
    chroms, table = intervals(str(tmp_path / "CTCF.bw"), "chrI")
    assert len(chroms) == 17 and chroms["chrI"] == 230_218 and len(table) > 700


@pytest.mark.parametrize("case, expected", [
    ("not_a_model", "not a DeepGMAP model file"),
    ("region_past_end", "region ends past the end of chr20"),
    ("unknown_chrom", "chrX not in the genome"),
    ("saliency_without_regions", "--saliency needs --regions"),
    ("other_window_table", "the model reads 1000 bp"),
])
def test_bad_input_gives_one_line(model_path, test_data, tmp_path, capsys, case, expected):
    args = ["--model", model_path, "--genome", str(test_data / "genome.fa.gz"), "--outdir", str(tmp_path / "out")]
    if case == "not_a_model":
        (tmp_path / "m.keras").write_text("hello")
        args[1] = str(tmp_path / "m.keras")
    elif case == "region_past_end":
        (tmp_path / "r.bed").write_text("chr20\t4999000\t5000001\n")
        args += ["--regions", str(tmp_path / "r.bed")]
    elif case == "unknown_chrom":
        args += ["--chroms", "chrX"]
    elif case == "saliency_without_regions":
        args += ["--saliency"]
    else:
        (tmp_path / "w.tsv").write_text("#chrom\tstart\tend\tsplit\tCTCF\tH3K4me3\nchr20\t0\t500\ttrain\t1\t0\n")
        args += ["--evaluate", str(tmp_path / "w.tsv")]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not any(name.endswith((".bw", ".part")) for name in os.listdir(tmp_path / "out")) \
        if (tmp_path / "out").exists() else True


SHARED = {"conv4": True, "conv3-frss": True, "conv4-frss": True, "conv4-frss-plus": True,
          "deepsea": False, "basset": False, "danq": False, "danq-frss": False}


@pytest.mark.parametrize("name", sorted(SHARED))
def test_shared_trunk_equals_per_window_prediction(name, test_data, tmp_path, capsys):
    from deepgmap_core.models.build import build_model
    from deepgmap_core.models.files import save_model
    from deepgmap_core.predict import PredictSettings, predict_starts
    from deepgmap_core.shared_trunk import trunk_plan

    keras.utils.set_random_seed(4)
    model = build_model(name, 2, 1000, 0.1)
    plan, reason = trunk_plan(model)
    assert (plan is not None) == SHARED[name], reason
    if plan is None:
        # Pools that do not divide a window (SAME padding at its end) or an LSTM: per window, said so.
        save_model(model, str(tmp_path / "m.keras"), {"class_names": ["a", "b"], "window": 1000,
                                                       "one_hot_order": "AGCT", "model": name})
        assert main(["--model", str(tmp_path / "m.keras"), "--genome", str(test_data / "genome.fa.gz"),
                     "--regions", str(test_data / "regions.bed"), "--outdir", str(tmp_path / "out")]) == 0
        assert f"predicting window by window: {reason}" in capsys.readouterr().err
        return
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        # Real windows every 300 bp, with a gap, and windows at several phases of the pools.
        starts = np.r_[np.arange(1_000_000, 1_060_000, 300), np.arange(2_000_100, 2_010_000, 300), [3_000_050]]
        for rc_average in (False, True):
            settings = PredictSettings(batch_size=64, rc_average=rc_average)
            shared = predict_starts(model, genome, "chr20", starts, 1000, settings, plan=plan)
            alone = predict_starts(model, genome, "chr20", starts, 1000, settings)
            np.testing.assert_allclose(shared, alone, atol=1e-5)
