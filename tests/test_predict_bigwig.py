"""predict-bigwig with a small model trained on real chr20 windows: valid bigWigs on the real part
of chr22, bins equal to the mean of per-window predictions at the genome's class balance,
evaluation and the overfitting test equal to scikit-learn, saliency equal to finite
differences, peaks bounded around local maxima with their threshold's provenance, bedGraph,
another species, bad input."""

import base64
import json
import os
import zipfile

import keras
import numpy as np
import pyBigWig
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from deepgmap_core.calibration import genome_probabilities
from deepgmap_core.cli.make_training_windows import main as make_windows
from deepgmap_core.cli.predict_bigwig import main
from deepgmap_core.fileio import folder_lock
from deepgmap_core.genome import Genome, one_hot_windows, reverse_complement_one_hot
from deepgmap_core.interpret import class_logits
from deepgmap_core.models.files import load_model
from deepgmap_core.predict import predict_batch
from deepgmap_core.tracks import BinMeans, bin_means
from deepgmap_core.settings import TrainSettings
from deepgmap_core.training import train_model
from deepgmap_core.windows import read_windows_table
from finite_differences import saliency_by_finite_differences


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
    umask = os.umask(0)
    os.umask(umask)
    for name in ("CTCF.bw", "H3K4me3.bw"):
        # written under a private temporary name (mode 0600), then given a new file's permissions
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~umask
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
    model, info = load_model(model_path)
    # The training windows kept 10% of the negatives: outputs are shifted to the genome's balance.
    offset = info.calibration["classes"][0]["logit_offset"]
    assert offset < -1
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
            corrected = 1 / (1 + np.exp(-(np.log(both[:, 0] / (1 - both[:, 0])) + offset)))
            assert value == pytest.approx(float(corrected.mean()), abs=1e-5)


def test_a_flanked_models_bins_are_its_labelled_windows(test_data, tmp_path):
    """DeepSEA's layout (make-training-windows --window 200 --stride 200 --flank 400): the model
    reads 1 kb, but its prediction is about the central 200 bp, so with the stride equal to the
    labelled window each 200 bp bin holds exactly the prediction of the 1 kb input around it
    (spreading it over the whole 1 kb input blurred the track over five bins)."""
    genome_path = str(test_data / "genome.fa.gz")
    windows, model_path = tmp_path / "windows.tsv", str(tmp_path / "model.keras")
    assert make_windows(["--genome", genome_path, "--peaks", str(test_data / "CTCF.bed"), "--names", "CTCF",
                         "--window", "200", "--stride", "200", "--flank", "400", "--valid-chroms", "chr22",
                         "--seed", "1", "-o", str(windows)]) == 0
    with Genome(genome_path) as genome:
        train_model(genome, read_windows_table(str(windows)),
                    TrainSettings(width_scale=0.1, epochs=1, steps_per_epoch=20, max_valid_windows=200, seed=1),
                    model_path, "test")
        assert main(["--model", model_path, "--genome", genome_path, "--chroms", "chr22",
                     "--outdir", str(tmp_path / "tracks")]) == 0
        model, info = load_model(model_path)
        assert info.window == 1000
        _, track = intervals(str(tmp_path / "tracks" / "CTCF.bw"), "chr22")
        assert len(track) > 1000 and ((track[:, 1] - track[:, 0]) == 200).all()
        picked = track[np.random.default_rng(0).choice(len(track), 20, replace=False)]
        x = one_hot_windows(genome, ["chr22"] * len(picked), (picked[:, 0] - 400).astype(np.int64), 1000)
    expected = genome_probabilities(predict_batch(model, x, info.rc_average), info)[:, 0]
    assert picked[:, 2] == pytest.approx(expected, abs=1e-5)


def test_evaluation_equals_scikit_learn_on_the_same_coordinates(model_path, test_data, tmp_path, capsys):
    """The valid rows (chr22, whose tracks are made) are scored by the tracks' own window
    predictions, the train rows (chr20) predicted apart: both equal per-window predictions."""
    windows = str(test_data / "windows.tsv")
    assert main(["--model", model_path, "--genome", str(test_data / "genome.fa.gz"), "--chroms", "chr22",
                 "--outdir", str(tmp_path), "--evaluate", windows]) == 0
    curves, page = (tmp_path / "evaluation.png").read_bytes(), (tmp_path / "evaluation.html").read_text()
    assert curves.startswith(b"\x89PNG") and base64.b64encode(curves).decode() in page
    table = read_windows_table(windows)
    valid_rows = int((table.splits == "valid").sum())
    assert f"evaluation: {valid_rows:,} of {len(table.starts):,} windows scored by the tracks'" in capsys.readouterr().err
    rows = [line.rstrip("\n").split("\t") for line in open(tmp_path / "evaluation.tsv") if not line.startswith("#")]
    reported = {(r[0], r[1], r[2]): (float(r[3]), float(r[4])) for r in rows if r[7] == "model"}
    assert {r[7] for r in rows} == {"model", "gc", "chance"}  # the baselines (tests/test_baselines.py)
    table = read_windows_table(windows)
    model, info = load_model(model_path)
    keep = float(table.metadata["keep_negatives"])
    expected = {}
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        for split in ("train", "valid"):
            chosen = np.flatnonzero(table.splits == split)
            x = one_hot_windows(genome, table.chroms[chosen], table.starts[chosen], 1000)
            predictions = predict_batch(model, x, info.rc_average)  # both strands, as trained
            labels = table.labels[chosen]
            weights = np.where((split == "train") & ~labels.any(axis=1), 1 / keep, 1.0)
            for i, name in enumerate(table.class_names):
                if not 0 < labels[:, i].sum() < len(labels):
                    assert np.isnan(reported[(split, "all", name)][1])
                    continue
                auroc = roc_auc_score(labels[:, i], predictions[:, i], sample_weight=weights)
                auprc = average_precision_score(labels[:, i], predictions[:, i], sample_weight=weights)
                assert reported[(split, "all", name)] == pytest.approx((auroc, auprc), abs=2e-6)
                expected[split, name] = auroc, auprc, np.sum(weights * labels[:, i]) / np.sum(weights)
    assert ("train", "chr20", "CTCF") in reported
    # The overfitting test: chr20 is the one training chromosome, chr22 the held-out (valid) one.
    lines = [line.rstrip("\n").split("\t") for line in open(tmp_path / "evaluation.tsv")
             if line.startswith("##overfitting_by_class")]
    columns = lines[0][2:]
    by_class = {row[1]: dict(zip(columns, map(float, row[2:]))) for row in lines[1:]}
    (auroc_train, auprc_train, prevalence_train), (auroc_valid, auprc_valid, prevalence_valid) = \
        expected["train", "CTCF"], expected["valid", "CTCF"]
    over_chance_train = (auprc_train - prevalence_train) / (1 - prevalence_train)
    over_chance_valid = (auprc_valid - prevalence_valid) / (1 - prevalence_valid)
    assert by_class["CTCF"] == pytest.approx({
        "auroc_train": auroc_train, "auroc_held_out": auroc_valid, "auroc_gap": auroc_train - auroc_valid,
        "auprc_train": auprc_train, "auprc_held_out": auprc_valid, "auprc_gap": auprc_train - auprc_valid,
        "prevalence_train": prevalence_train, "prevalence_held_out": prevalence_valid,
        "auprc_over_chance_train": over_chance_train, "auprc_over_chance_held_out": over_chance_valid,
        "auprc_over_chance_gap": over_chance_train - over_chance_valid}, abs=2e-6)
    # H3K4me3 has no positive on chr20: no score there, so no gap.
    assert np.isnan(by_class["H3K4me3"]["auroc_gap"]) and np.isnan(by_class["H3K4me3"]["auprc_over_chance_gap"])
    summary = next(line for line in open(tmp_path / "evaluation.tsv") if line.startswith("##overfitting_test"))
    assert f"AUROC gap {auroc_train - auroc_valid:.4f}" in summary
    assert f"AUPRC over chance gap {over_chance_train - over_chance_valid:.4f}" in summary
    html = open(tmp_path / "evaluation.html").read()
    assert "data:image/png;base64," in html and "Overfitting test" in html and "AUPRC over chance" in html


def test_saliency_equals_finite_differences(test_data, tmp_path):
    """With the trained CTCF model: the small model above, with convolutions without bias, has
    ReLU kinks within any usable finite-difference step of the input."""
    model_path = str(test_data / "CTCF_chr20.keras")
    regions = tmp_path / "regions.bed"
    regions.write_text("chr20\t2000000\t2000200\n")
    out = tmp_path / "out"
    assert main(["--model", model_path, "--genome", str(test_data / "genome.fa.gz"), "--regions", str(regions),
                 "--saliency", "--outdir", str(out)]) == 0
    with pyBigWig.open(str(out / "CTCF.saliency.bw")) as bw:
        saliency = np.array(bw.values("chr20", 2_000_000, 2_000_200))
    assert np.isfinite(saliency).all() and np.abs(saliency).max() > 0
    model, _ = load_model(model_path)
    logits = class_logits(model)
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        x = one_hot_windows(genome, ["chr20"], [2_000_000], 200).astype(np.float32)
    finite = saliency_by_finite_differences(logits, x, np.arange(200))
    # A ReLU kink within the step makes the odd base differ: the track as a whole must follow.
    assert np.corrcoef(saliency, finite)[0, 1] > 0.99
    assert np.median(np.abs(saliency - finite)) < 0.02 * np.abs(saliency).max()


def peak_file(path):
    """(header lines without '##' as a dict, rows) of a predicted-peaks narrowPeak."""
    lines = open(path).read().splitlines()
    header = dict(line[2:].split("=", 1) for line in lines if line.startswith("##"))
    return header, [line.split("\t") for line in lines if not line.startswith("#")]


def test_chunks_of_windows_give_the_same_tracks_and_peaks(model_path, test_data, tmp_path, monkeypatch):
    """A chromosome predicted a few windows at a time (memory bounded for many classes) gives the
    bigWigs and predicted regions of the whole chromosome at once."""
    import deepgmap_core.predict

    outputs = {}
    for name, chunk_values in (("whole", deepgmap_core.predict.CHUNK_VALUES), ("chunks", 2 * 64)):
        monkeypatch.setattr(deepgmap_core.predict, "CHUNK_VALUES", chunk_values)
        assert main(["--model", model_path, "--genome", str(test_data / "genome.fa.gz"), "--chroms", "chr20", "chr22",
                     "--batch-size", "64", "--outdir", str(tmp_path / name), "--peaks-out", str(tmp_path / name),
                     "--threshold", "0.3"]) == 0
        outputs[name] = {chrom: intervals(str(tmp_path / name / "CTCF.bw"), chrom)[1] for chrom in ("chr20", "chr22")}
        outputs[name]["peaks"] = peak_file(tmp_path / name / "CTCF.narrowPeak")[1]
    for chrom in ("chr20", "chr22"):
        assert len(outputs["whole"][chrom]) > 3000
        np.testing.assert_allclose(outputs["chunks"][chrom], outputs["whole"][chrom], atol=1e-6)
    assert len(outputs["whole"]["peaks"]) > 10
    assert [row[:3] for row in outputs["chunks"]["peaks"]] == [row[:3] for row in outputs["whole"]["peaks"]]


def test_peaks_out_and_bedgraph(model_path, test_data, tmp_path):
    assert main(["--model", model_path, "--genome", str(test_data / "genome.fa.gz"), "--chroms", "chr20",
                 "--outdir", str(tmp_path / "bg"), "--bedgraph", "--peaks-out", str(tmp_path / "peaks"),
                 "--threshold", "0.0"]) == 0
    lines = [line.split("\t") for line in open(tmp_path / "bg" / "CTCF.bedGraph")]
    values = np.array([float(f[3]) for f in lines])
    starts, ends = np.array([int(f[1]) for f in lines]), np.array([int(f[2]) for f in lines])
    assert (starts[1:] >= ends[:-1]).all() and ((values >= 0) & (values <= 1)).all()
    header, peaks = peak_file(tmp_path / "peaks" / "CTCF.narrowPeak")
    assert header["threshold"] == "0" and header["threshold_rule"] == "given (--threshold 0)"
    assert header["values"].startswith("probabilities at the genome's class balance")
    # Threshold 0: every bin is above it; each region is a local maximum's bin and at most one bin
    # (1000 // (2 x 300)) each side, never a whole run of adjacent bins.
    grid = np.full(ends[-1] // 300 + 1, -np.inf)
    grid[starts // 300] = values
    summits = []
    for row in peaks:
        start, end, summit = int(row[1]), int(row[2]), int(row[1]) + int(row[9])
        assert len(row) == 10 and 0 <= int(row[4]) <= 1000 and start <= summit < end
        assert end - start <= 900 and summit // 300 - start // 300 <= 1 and (end - 1) // 300 - summit // 300 <= 1
        assert float(row[6]) == pytest.approx(grid[summit // 300], abs=1e-6)
        assert grid[max(summit // 300 - 3, 0):summit // 300 + 4].max() == grid[summit // 300]
        summits.append(summit // 300)
    assert all(int(a[2]) <= int(b[1]) for a, b in zip(peaks, peaks[1:]))
    # Every bin higher than all bins within 3 of it is a summit.
    def strict_local_maximum(i):
        return grid[i] > -np.inf and (grid[i] > np.r_[grid[max(i - 3, 0):i], grid[i + 1:i + 4]]).all()

    assert {i for i in range(len(grid)) if strict_local_maximum(i)} <= set(summits)
    runs = 1 + int((starts[1:] != ends[:-1]).sum())
    assert len(peaks) > 10 * runs


def test_a_flat_stretch_gives_bounded_regions_not_one_megabase_peak():
    from deepgmap_core.tracks import ChromosomeTrack, peak_half_width, threshold_regions

    starts = np.arange(0, 1_000_000, 300)
    track = ChromosomeTrack("chr1", starts, starts + 300, np.full((len(starts), 1), 0.4, dtype=np.float32))
    half_width = peak_half_width(1000, 300)
    region_starts, region_ends, peak_values, summits = threshold_regions(track, 0, 0.3, 300, half_width)
    assert half_width == 1 and (region_ends - region_starts).max() <= 1000 + 300
    assert (region_starts[1:] >= region_ends[:-1]).all() and (peak_values == np.float32(0.4)).all()
    # On a flat stretch one summit every 2 x half_width + 2 = 4 bins, each region around its summit.
    assert len(region_starts) == -(-len(starts) // 4)
    assert ((region_starts + summits) // 300 % 4 == 0).all()
    assert threshold_regions(track, 0, 0.5, 300, half_width)[0].size == 0


def test_threshold_auto_is_the_models_and_says_how_it_was_chosen(model_path, test_data, tmp_path, capsys):
    from deepgmap_core.models.files import read_model_info

    calibration = read_model_info(model_path).calibration
    for model, out in ((model_path, tmp_path / "trained"), (str(test_data / "model.keras"), tmp_path / "old")):
        assert main(["--model", model, "--genome", str(test_data / "genome.fa.gz"), "--regions",
                     str(test_data / "regions.bed"), "--outdir", str(out), "--peaks-out", str(out / "peaks")]) == 0
    log = capsys.readouterr().err
    for i, name in enumerate(("CTCF", "H3K4me3")):
        header, _ = peak_file(tmp_path / "trained" / "peaks" / f"{name}.narrowPeak")
        chosen = calibration["classes"][i]
        assert float(header["threshold"]) == pytest.approx(chosen["threshold"], rel=1e-5)
        assert header["threshold_rule"].startswith("chosen on the valid chromosomes (chr22) for precision 0.5: ")
        assert chosen["threshold_rule"] in header["threshold_rule"]
        assert f"{name} peaks: threshold {chosen['threshold']:.4g}, chosen on the valid chromosomes" in log
        # A model file from before the thresholds were recorded: the old fixed 0.5, said so.
        header, _ = peak_file(tmp_path / "old" / "peaks" / f"{name}.narrowPeak")
        assert header["threshold"] == "0.5" and "holds no threshold chosen on validation" in header["threshold_rule"]
        assert header["values"].startswith("probabilities at the class balance of the model's training windows")
    assert "values are probabilities at the genome's class balance" in log


def test_a_second_run_on_one_output_folder_fails_cleanly(model_path, test_data, tmp_path, capsys):
    """While a run holds the folder (as predict-bigwig does for its whole run), another stops at
    once with one line and writes nothing there; once it is free, the run goes through."""
    args = ["--model", model_path, "--genome", str(test_data / "genome.fa.gz"), "--chroms", "chr22",
            "--outdir", str(tmp_path / "out")]
    with folder_lock(str(tmp_path / "out"), "deepgmap-predict-bigwig"):
        assert main(args) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "another deepgmap-predict-bigwig run is writing to this folder" in err[0], err
        assert os.listdir(tmp_path / "out") == []
    assert main(args) == 0 and sorted(os.listdir(tmp_path / "out")) == ["CTCF.bw", "H3K4me3.bw"]


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
    ("class_names_one_file", "classes 'K562/mark' and 'K562:mark' would both be written as K562_mark"),
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
    elif case == "class_names_one_file":  # the model file with its two classes renamed
        with zipfile.ZipFile(model_path) as source, zipfile.ZipFile(tmp_path / "m.keras", "w") as target:
            for item in source.infolist():
                data = source.read(item)
                if item.filename == "deepgmap.json":
                    entry = json.loads(data)
                    entry["class_names"] = ["K562/mark", "K562:mark"]
                    data = json.dumps(entry).encode()
                target.writestr(item, data)
        args[1] = str(tmp_path / "m.keras")
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
    from deepgmap_core.models.files import ModelInfo, save_model
    from deepgmap_core.predict import predict_starts
    from deepgmap_core.settings import PredictSettings
    from deepgmap_core.shared_trunk import trunk_plan

    keras.utils.set_random_seed(4)
    model = build_model(name, 2, 1000, 0.1)
    plan, reason = trunk_plan(model)
    assert (plan is not None) == SHARED[name], reason
    if plan is None:
        # Pools that do not divide a window (SAME padding at its end) or an LSTM: per window, said so.
        save_model(model, str(tmp_path / "m.keras"), ModelInfo(["a", "b"], 1000, name, "AGCT"))
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


@pytest.mark.parametrize("window", [300, 250, 60])
def test_bin_means_in_chunks_equal_the_means_of_the_overlapping_windows(window):
    """Each bin's value is the mean of the scored windows over it, whether the windows come at
    once or in chunks of any size (with gaps between them)."""
    rng = np.random.default_rng(5)
    stride, length = 100, 5_050
    starts = np.sort(rng.choice(np.arange(0, length - window + 1, stride), 30, replace=False))
    predictions = rng.random((len(starts), 40)).astype(np.float32)
    expected_starts, expected = [], []
    for bin_start in range(0, length, stride):
        over = (starts < bin_start + stride) & (starts + window > bin_start)
        if over.any():
            expected_starts.append(bin_start)
            expected.append(predictions[over].mean(axis=0))
    bin_starts, bin_ends, values = bin_means(starts, predictions, length, window, stride)
    assert bin_starts.tolist() == expected_starts and bin_ends[-1] <= length
    np.testing.assert_allclose(values, np.array(expected), rtol=1e-5)
    for chunk in (1, 4, 7, 29):
        binner, pieces = BinMeans(length, window, stride), []
        for first in range(0, len(starts), chunk):
            done_before = starts[first + chunk] // stride if first + chunk < len(starts) else None
            pieces.append(binner.add(starts[first:first + chunk], predictions[first:first + chunk], done_before))
        assert np.concatenate([p[0] for p in pieces]).tolist() == expected_starts
        np.testing.assert_allclose(np.concatenate([p[2] for p in pieces]), np.array(expected), rtol=1e-5)
        assert sum(len(p[1]) for p in pieces) == len(expected_starts)
