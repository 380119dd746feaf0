"""train-model on real windows: every architecture trains, saves, reloads and predicts the same;
FRSS equivariance; the loss terms; determinism; resume after a real interruption; bad input."""

import base64
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from deepgmap_core.cli.make_training_windows import main as make_windows
from deepgmap_core.cli.train_model import main as train_main
from deepgmap_core.errors import InputError
from deepgmap_core.evaluation import check_table_for_model
from deepgmap_core.genome import Genome, one_hot_windows, reverse_complement_one_hot
from deepgmap_core.models import DEFAULT_MODEL, L1_PREDICTION_WEIGHT, L2_WEIGHT, model_names
from deepgmap_core.models.build import build_model
from deepgmap_core.models.files import load_model, read_model_info
from deepgmap_core.interpret import class_logits
from deepgmap_core.backend import configure_determinism
from deepgmap_core.batching import split_rows
from deepgmap_core.settings import TrainSettings
from deepgmap_core.training import TrainBatches, new_model, reseed_random_layers, train_model
from deepgmap_core.windows import read_windows_table

TINY = 0.05


@pytest.fixture(scope="module")
def windows(test_data, tmp_path_factory):
    """Real windows: hg19 chr20:1-5 Mb (train) and chr22 (valid), CTCF and K562 H3K4me3 peaks."""
    out = tmp_path_factory.mktemp("windows") / "windows.tsv"
    assert make_windows(["--genome", str(test_data / "genome.fa.gz"), "--peaks", str(test_data / "CTCF.bed"),
                         str(test_data / "H3K4me3.narrowPeak"), "--blacklist", str(test_data / "blacklist.bed"),
                         "--valid-chroms", "chr22", "--seed", "1", "-o", str(out)]) == 0
    return str(out)


@pytest.fixture(scope="module")
def genome(test_data):
    with Genome(str(test_data / "genome.fa.gz")) as handle:
        yield handle


def small_settings(model="conv4-frss", **changes):
    values = dict(model=model, width_scale=TINY, epochs=1, steps_per_epoch=2, batch_size=20,
                  max_valid_windows=100, seed=3)
    values.update(changes)
    return TrainSettings(**values)


@pytest.mark.parametrize("name", model_names())
def test_every_model_trains_saves_reloads_and_predicts_the_same(name, genome, windows, tmp_path):
    table = read_windows_table(windows)
    output = str(tmp_path / "model.keras")
    model, info = train_model(genome, table, small_settings(name), output, "test")
    assert info.model == name and info.class_names == ["CTCF", "H3K4me3"]
    os.rename(output, tmp_path / "model.dat")  # any name, as Galaxy's datasets have
    reloaded, reloaded_info = load_model(str(tmp_path / "model.dat"))
    batch = one_hot_windows(genome, table.chroms[:16], table.starts[:16], 1000)
    np.testing.assert_allclose(reloaded.predict(batch, verbose=0), model.predict(batch, verbose=0), atol=1e-6)
    assert reloaded_info == info
    assert not os.path.exists(output + ".checkpoint.keras")


def test_model_file_carries_what_predicting_and_reviewing_need(genome, windows, tmp_path):
    output = str(tmp_path / "model.keras")
    _, info = train_model(genome, read_windows_table(windows), small_settings(), output, "cmd")
    stored = read_model_info(output)
    assert stored == info
    assert stored.class_names == ["CTCF", "H3K4me3"] and stored.window == 1000 and stored.labelled_window == 1000
    assert stored.one_hot_order == "AGCT" and stored.model == "conv4-frss" and stored.width_scale == TINY
    assert stored.split == {"train": ["chr20"], "valid": ["chr22"], "test": []}
    assert stored.seed == 3 and stored.versions["keras"] == keras.__version__
    assert {s["class"] for s in stored.final_metrics["valid"]} == {"CTCF", "H3K4me3"}
    assert stored.windows_table["tool"] == "make-training-windows" and stored.stride == 300
    with zipfile.ZipFile(output) as archive:
        assert {"config.json", "model.weights.h5", "deepgmap.json"} <= set(archive.namelist())


@pytest.mark.parametrize("name", ["conv3-frss", "conv4-frss", "conv4-frss-plus", "danq-frss"])
def test_frss_layer_two_is_reverse_complement_equivariant(name, genome):
    keras.utils.set_random_seed(11)
    model = build_model(name, 2, 1000, 0.25)
    # Before its pooling (DanQ-FRSS pools VALID: the last incomplete pool cell is dropped at one end).
    first = keras.Model(model.input, model.get_layer("frss1").output)
    layer_two = lambda x: model.get_layer("frss2").scan(first(x))  # noqa: E731
    x = one_hot_windows(genome, ["chr20"] * 4, [1_000_000, 2_000_000, 3_000_000, 4_000_000], 1000)
    # Random weights of a realistic scale (the initial ones are tiny).
    for layer in ("frss1", "frss2"):
        kernel = model.get_layer(layer).kernel
        kernel.assign(np.random.default_rng(5).normal(0, 0.3, kernel.shape).astype("float32"))
    as_numpy = keras.ops.convert_to_numpy  # works for GPU tensors of every backend
    forward = as_numpy(layer_two(x))
    reverse = as_numpy(layer_two(np.ascontiguousarray(reverse_complement_one_hot(x))))
    assert np.abs(forward).max() > 0.1
    np.testing.assert_allclose(reverse, forward[:, ::-1], atol=1e-4 * np.abs(forward).max())
    # The whole network is not strand-invariant (layers 3+ are ordinary).
    assert not np.allclose(as_numpy(model(x)), as_numpy(model(np.ascontiguousarray(reverse_complement_one_hot(x)))),
                           atol=1e-7)


def test_loss_terms_l2_on_conv_and_dense_weights_and_l1_on_predictions(genome):
    x = one_hot_windows(genome, ["chr20"] * 5, [1_000_000 + 997 * i for i in range(5)], 1000)
    for name in ("conv4-frss", "deepsea", "danq-frss"):
        model = build_model(name, 2, 1000, TINY)
        predictions = keras.ops.convert_to_numpy(model(x, training=False))
        # The original's L2 list: every convolution and dense kernel and the dense biases, not the LSTM's weights.
        penalised = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights
                     if "bilstm" not in w.path and (w.path.endswith("kernel") or "dense" in w.path or
                                                    "predictions" in w.path)]
        expected = L2_WEIGHT * sum(float(np.sum(np.square(w))) for w in penalised)
        # Keras 3 averages activity regularisation over the batch: 1e-8 * mean of sum |prediction|.
        expected += L1_PREDICTION_WEIGHT * np.abs(predictions).sum() / len(x)
        assert sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses) == pytest.approx(expected, rel=1e-4)
        assert len(model.losses) == len(penalised) + 1
    plain = build_model("basset", 2, 1000, TINY)
    plain(x)
    assert plain.losses == []


def test_paper_recipe_applies_each_half_batch_twice(genome, windows, tmp_path):
    """Four updates per batch of the paper's recipe, in the original's order (second half first):
    the trained weights equal those of the same updates written out by hand."""
    table = read_windows_table(windows)
    settings = small_settings(recipe="paper", steps_per_epoch=2, patience=0)
    model, info = train_model(genome, table, settings, str(tmp_path / "m.keras"), "test")
    assert info.state["updates"] == 8 and info.recipe["updates_per_batch"] == 4
    assert info.learning_rate == 1e-4
    configure_determinism(settings.seed)
    by_hand = new_model(table, settings, split_rows(table, "train", 0, settings.seed))
    assert isinstance(by_hand.optimizer, keras.optimizers.Adam)
    batches = TrainBatches(genome, table, split_rows(table, "train", 0, settings.seed), 20, 2, settings.seed)
    reseed_random_layers(by_hand, settings.seed, 0)  # the epoch's dropout masks, as the loop draws them
    for x, y in (batches[0], batches[1]):
        for part in (slice(10, None), slice(None, 10)) * 2:
            by_hand.train_on_batch(x[part], y[part])
    for ours, theirs in zip(model.get_weights(), by_hand.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


def test_paper_recipe_trains_danq_with_rmsprop(genome, windows, tmp_path):
    table = read_windows_table(windows)
    model = new_model(table, small_settings("danq", recipe="paper"), split_rows(table, "train", 0, 0))
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert isinstance(new_model(table, small_settings("danq"), split_rows(table, "train", 0, 0)).optimizer,
                      keras.optimizers.Adam)


@pytest.mark.parametrize("name", ["conv4-frss", "conv3-frss-bn", "deepsea"])
def test_logits_vary_across_real_windows_at_initialisation(name, genome):
    """The default recipe's He initialisation starts with logits that depend on the input (the
    paper's tiny truncated-normal weights give almost the same logit for every window)."""
    starts = np.linspace(1_000_000, 4_900_000, 32).astype(int)
    x = one_hot_windows(genome, ["chr20"] * len(starts), starts, 1000)
    spread = {}
    for initialization in ("paper", "he"):
        keras.utils.set_random_seed(2)
        model = build_model(name, 1, 1000, 0.25, initialization)
        logits = keras.ops.convert_to_numpy(class_logits(model)(x))[:, 0]
        spread[initialization] = float(np.std(logits))
    assert spread["he"] > 0.05 and spread["he"] > 20 * spread["paper"], spread


def test_max_minutes_stops_training_and_keeps_the_best_model(genome, windows, tmp_path, capsys):
    table = read_windows_table(windows)
    output = str(tmp_path / "m.keras")
    settings = small_settings(epochs=5, steps_per_epoch=1_000_000, max_minutes=0.05, patience=0)
    started = time.monotonic()
    _, info = train_model(genome, table, settings, output, "test")
    assert time.monotonic() - started < 60
    state = read_model_info(output).state
    assert state["epoch"] == 1 and "time budget of 0.05 minutes spent" in state["stop"]
    assert 0 < state["updates"] < 1_000_000 and state["seconds"] >= 3
    assert info.final_metrics["valid"]
    assert "stopped after epoch 1: time budget" in capsys.readouterr().err


def test_augmented_batches_are_shifted_or_reverse_complemented_windows(genome, windows):
    table = read_windows_table(windows)
    rows = split_rows(table, "train", 0, 0)
    batches = TrainBatches(genome, table, rows, 32, 2, 7, max_shift=50, reverse_complement=True)
    x, y = batches[1]
    assert np.array_equal(x, TrainBatches(genome, table, rows, 32, 2, 7, 50, True)[1][0])  # seeded
    plain, plain_y = TrainBatches(genome, table, rows, 32, 2, 7)[1]
    assert np.array_equal(y, plain_y)
    flipped = shifted = 0
    for window, reference, row_start in zip(x, plain, table.starts[TrainBatches(genome, table, rows, 32, 2, 7)
                                                                    ._order(0)[32:64]]):
        candidates = {shift: one_hot_windows(genome, ["chr20"], [row_start + shift], 1000)[0]
                      for shift in range(-50, 51) if row_start + shift >= 0}
        matches = [(shift, strand) for shift, seq in candidates.items()
                   for strand, view in (("+", window), ("-", reverse_complement_one_hot(window)))
                   if np.array_equal(view, seq)]
        assert matches, "a window is neither a shift nor a reverse complement of its row"
        flipped += matches[0][1] == "-"
        shifted += matches[0][0] != 0
    assert 5 < flipped < 27 and shifted > 25


def test_same_seed_same_weights_other_seed_other_weights(genome, windows, tmp_path):
    table = read_windows_table(windows)
    weights = []
    for run, seed in enumerate((3, 3, 4)):
        model, _ = train_model(genome, table, small_settings(seed=seed, steps_per_epoch=3),
                               str(tmp_path / f"m{run}.keras"), "test")
        weights.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(weights[0], weights[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(weights[0], weights[2]))


def test_cli_writes_model_metrics_and_report(windows, test_data, tmp_path, capsys):
    out = {name: str(tmp_path / name) for name in ("m.keras", "metrics.tsv", "report.html", "curves.png")}
    assert train_main(["--genome", str(test_data / "genome.fa.gz"), "--windows", windows, "--width-scale", str(TINY),
                       "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "20", "--max-valid-windows", "200",
                       "--patience", "0", "-o", out["m.keras"], "--metrics", out["metrics.tsv"],
                       "--report", out["report.html"], "--plot", out["curves.png"],
                       "--motif-db", str(test_data / "JASPAR2024_CORE_clusters.meme")]) == 0
    rows = [line.rstrip("\n").split("\t") for line in open(out["metrics.tsv"]) if not line.startswith("#")]
    assert [(r[0], r[1], r[2]) for r in rows] == [("1", "valid", "CTCF"), ("1", "valid", "H3K4me3"),
                                                  ("2", "valid", "CTCF"), ("2", "valid", "H3K4me3"),
                                                  ("best", "valid", "CTCF"), ("best", "valid", "H3K4me3")] + \
        [("baseline", "valid", "CTCF")] * 3 + [("baseline", "valid", "H3K4me3")] * 2
    # H3K4me3 has no positive on the train chromosome: no motif can be chosen for it.
    methods = [r[9] for r in rows]
    assert methods == ["model"] * 6 + ["gc", methods[7], "chance", "gc", "chance"]
    assert methods[7].startswith("motif:C055:")   # the JASPAR CTCF cluster
    assert all(0 <= float(r[4]) <= 1 for r in rows)
    best = {r[2]: r[5:7] for r in rows if r[0] == "best"}
    assert all(r[5:7] == best[r[2]] for r in rows if r[0] == "baseline")  # the same windows as the model's
    html = open(out["report.html"]).read()
    assert "data:image/png;base64," in html and DEFAULT_MODEL in html and "chr22" in html
    curves = open(out["curves.png"], "rb").read()
    assert curves.startswith(b"\x89PNG") and base64.b64encode(curves).decode() in html  # the report's own figure
    assert "Beside baselines that need no training" in html and "C055:CTCF" in html
    err = capsys.readouterr().err
    assert "epoch 2:" in err and "samples/s" in err and "best model" in err and "GC AUROC" in err


def test_the_log_names_ten_classes_and_the_metrics_all(windows, test_data, tmp_path, capsys):
    """With hundreds of classes a line per class would bury the log: it names the first ten
    (scores and peak thresholds) and counts the rest, which --metrics lists."""
    wide = tmp_path / "wide.tsv"
    with open(windows) as source, open(wide, "w") as target:
        for line in source:
            cells = line.rstrip("\n").split("\t")
            if line.startswith("##"):
                target.write(line)
                continue
            labels = [f"{name}_{copy}" for copy in range(6) for name in cells[4:]] if line.startswith("#") \
                else cells[4:] * 6
            target.write("\t".join(cells[:4] + labels) + "\n")
    metrics = tmp_path / "metrics.tsv"
    assert train_main(["--genome", str(test_data / "genome.fa.gz"), "--windows", str(wide), "--width-scale", str(TINY),
                       "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "20", "--max-valid-windows", "200",
                       "-o", str(tmp_path / "m.keras"), "--metrics", str(metrics)]) == 0
    err = capsys.readouterr().err
    (best,) = [line for line in err.splitlines() if line.startswith("best model")]
    assert len(re.findall(r"\w+_\d AUROC", best)) == 10 and "H3K4me3_4" in best and "CTCF_5" not in best
    assert best.endswith("and 2 more classes (--metrics has every class)")
    assert sum(": positive fraction" in line for line in err.splitlines()) == 10
    assert "2 more classes calibrated" in err
    best_rows = [line.split("\t")[2] for line in open(metrics) if line.startswith("best\t")]
    assert len(best_rows) == 12 and "H3K4me3_5" in best_rows


def test_resume_after_a_real_interruption(windows, test_data, tmp_path):
    """SIGKILL early in epoch 2, --resume: the model equals, bit for bit, the one an uninterrupted
    run with the same seed trains (conv4-FRSS: its dropout masks too, whose random state Keras
    does not save)."""
    output = tmp_path / "m.keras"
    checkpoint = Path(str(output) + ".checkpoint.keras")
    common = [str(Path(sys.executable).parent / "deepgmap-train-model"), "--genome", str(test_data / "genome.fa.gz"),
              "--windows", windows, "--model", "conv4-frss", "--width-scale", str(TINY), "--epochs", "3",
              "--steps-per-epoch", "30", "--batch-size", "20", "--max-valid-windows", "100", "--patience", "0",
              "--seed", "5"]
    uninterrupted = tmp_path / "uninterrupted" / "m.keras"
    uninterrupted.parent.mkdir()
    assert subprocess.run(common + ["-o", str(uninterrupted)], capture_output=True).returncode == 0
    args = common + ["-o", str(output)]
    output.write_bytes(b"an earlier model")  # a killed run must leave it as it was
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stopped_after = read_model_info(str(checkpoint)).state["epoch"]
    assert 1 <= stopped_after < 3
    assert output.read_bytes() == b"an earlier model"
    resumed = subprocess.run(args + ["--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {checkpoint} after epoch {stopped_after}" in resumed.stderr
    history = read_model_info(str(output)).state["history"]
    assert [record["epoch"] for record in history] == [1, 2, 3]
    assert sorted(os.listdir(tmp_path)) == ["m.keras", "uninterrupted"]  # no checkpoint or best-so-far file left
    expected = read_model_info(str(uninterrupted)).state["history"]
    assert [(r["train_loss"], r["valid_loss"]) for r in history] == [(r["train_loss"], r["valid_loss"]) for r in expected]
    resumed_model, _ = load_model(str(output))
    expected_model, _ = load_model(str(uninterrupted))
    for resumed_weights, expected_weights in zip(resumed_model.get_weights(), expected_model.get_weights()):
        assert np.array_equal(resumed_weights, expected_weights)


def test_a_second_run_on_one_output_fails_cleanly(windows, test_data, tmp_path, capsys):
    """While a run holds an output (and the checkpoints it keeps beside it), another run on it stops
    at once with one line and writes nothing; a run on another output of the folder goes through."""
    from deepgmap_core.fileio import output_lock

    def run(output):
        return train_main(["--genome", str(test_data / "genome.fa.gz"), "--windows", windows, "--width-scale", "0.05",
                           "--epochs", "1", "--steps-per-epoch", "2", "--max-valid-windows", "100",
                           "-o", str(tmp_path / output)])

    with output_lock(str(tmp_path / "m.keras"), "deepgmap-train-model"):
        assert run("m.keras") == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "m.keras: another deepgmap-train-model run is writing this output" in err[0], err
        assert sorted(os.listdir(tmp_path)) == [".m.keras.lock"]
        assert run("other.keras") == 0
    assert sorted(os.listdir(tmp_path)) == ["other.keras"]


@pytest.mark.parametrize("onednn", ["0", "1"])
def test_a_diverging_run_stops_with_one_line_and_writes_nothing(onednn, windows, test_data, tmp_path):
    """A learning rate far too high: with oneDNN's kernels the regularised loss stays finite (but
    huge), without them it overflows; either way one line naming the epoch and the learning rate,
    no model file and no checkpoint left. In a fresh process: TensorFlow reads oneDNN's setting once."""
    run = subprocess.run([sys.executable, "-m", "deepgmap_core.cli.train_model", "--genome",
                          str(test_data / "genome.fa.gz"), "--windows", windows, "--width-scale", str(TINY),
                          "--epochs", "2", "--steps-per-epoch", "3", "--max-valid-windows", "100",
                          "--learning-rate", "1e38", "-o", str(tmp_path / "m.keras")],
                         capture_output=True, text=True, env=dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn))
    err = run.stderr.strip().splitlines()
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert "training diverged in epoch 1" in err[-1] and "1e+38" in err[-1], err
    assert os.listdir(tmp_path) == []


def test_resume_refuses_a_checkpoint_of_another_architecture(genome, windows, tmp_path):
    table = read_windows_table(windows)
    output = str(tmp_path / "m.keras")
    train_model(genome, table, small_settings("basset"), str(tmp_path / "other.keras"), "test")
    os.rename(tmp_path / "other.keras", output + ".checkpoint.keras")
    with pytest.raises(InputError, match="checkpoint of another run"):
        train_model(genome, table, small_settings("conv4-frss"), output, "test", resume=True)


def test_resume_names_every_setting_that_differs(genome, windows, tmp_path):
    """Same architecture, another seed and learning rate: refused with both differences named
    (resuming would keep the checkpoint's optimiser and record the new values); more epochs are
    what resuming is for, and pass."""
    table = read_windows_table(windows)
    output = str(tmp_path / "m.keras")
    train_model(genome, table, small_settings(learning_rate=1e-3), output, "test")
    for left_by_an_interrupted_run in (".checkpoint.keras", ".best.keras"):
        shutil.copy(output, output + left_by_an_interrupted_run)
    with pytest.raises(InputError) as refused:
        train_model(genome, table, small_settings(seed=4, learning_rate=2e-3), output, "test", resume=True)
    assert "seed 3, this run 4" in str(refused.value) and "learning-rate 0.001, this run 0.002" in str(refused.value)
    _, info = train_model(genome, table, small_settings(learning_rate=1e-3, epochs=2), output, "test", resume=True)
    assert [record["epoch"] for record in info.state["history"]] == [1, 2]


def test_a_resumed_run_whose_best_epoch_ran_before_calibrates_as_the_run_did(genome, windows, tmp_path):
    """The calibration uses the best epoch's valid predictions, kept from its scoring; a resumed run
    with no epoch left to run predicts them again from the best model: the same thresholds."""
    table = read_windows_table(windows)
    output = str(tmp_path / "m.keras")
    _, trained = train_model(genome, table, small_settings(), output, "test")
    for left_by_an_interrupted_run in (".checkpoint.keras", ".best.keras"):
        shutil.copy(output, output + left_by_an_interrupted_run)
    _, resumed = train_model(genome, table, small_settings(), output, "test", resume=True)
    assert [record["epoch"] for record in resumed.state["history"]] == [1]
    thresholds = [[c[key] for c in info.calibration["classes"]
                   for key in ("threshold", "threshold_precision", "threshold_recall")] for info in (trained, resumed)]
    assert thresholds[1] == pytest.approx(thresholds[0], rel=1e-6)
    assert trained.calibration["valid_windows"] == resumed.calibration["valid_windows"] == 100


def write_table(path, rows, classes=("CTCF",)):
    header = "#chrom\tstart\tend\tsplit\t" + "\t".join(classes)
    path.write_text("##tool=make-training-windows\n" + header + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return str(path)


@pytest.mark.parametrize("rows, extra, expected", [
    ([("chr20", 1_000_000, 1_001_000, "train", 1), ("chrX", 0, 1000, "valid", 1)], [], "chromosome(s) the genome lacks"),
    ([("chr20", 4_999_500, 5_000_500, "train", 1), ("chr22", 20_500_000, 20_501_000, "valid", 1)], [],
     "1 window(s) past their chromosome's end in the genome, e.g. chr20:4999500-5000500 (chr20 is 5,000,000 bp)"),
    ([("chr20", 1_000_000, 1_001_000, "train", 1), ("chr20", 1_000_300, 1_001_300, "train", 0)], [], "no windows in the valid split"),
    ([("chr20", 1_000_000, 1_001_000, "train", 1), ("chr22", 20_500_000, 20_501_000, "valid", 0)], [], "no positive window in the valid split"),
    ([("chr20", 1_000_000, 1_001_000, "train", 0), ("chr22", 20_500_000, 20_501_000, "valid", 1)], [], "no positive window in the train split"),
    ([("chr20", 1_000_000, 1_001_000, "train", 1), ("chr22", 20_500_000, 20_501_000, "valid", 1)], ["--batch-size", "5"], "larger than the 1 train windows"),
])
def test_bad_training_data_gives_one_line(test_data, tmp_path, capsys, rows, extra, expected):
    table = write_table(tmp_path / "w.tsv", rows)
    output = tmp_path / "m.keras"
    assert train_main(["--genome", str(test_data / "genome.fa.gz"), "--windows", table, "--width-scale", str(TINY),
                       "-o", str(output), *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not output.exists()


def test_class_without_positives_warns(genome, windows, tmp_path, capsys):
    # H3K4me3 peaks lie on chr22 only: none in the train split.
    train_model(genome, read_windows_table(windows), small_settings(), str(tmp_path / "m.keras"), "test")
    assert "class H3K4me3 has no positive window in the train split" in capsys.readouterr().err


def test_unknown_model_lists_the_names(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--genome", "g.fa", "--windows", "w.tsv", "--model", "resnet", "-o", str(tmp_path / "m")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "resnet" in err and all(name in err for name in model_names())
    with pytest.raises(InputError, match="the models are: deepsea, basset"):
        build_model("resnet", 1)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "x.keras"
    path.write_text(json.dumps({"not": "a model"}))
    with pytest.raises(InputError, match="not a DeepGMAP model file"):
        load_model(str(path))


@pytest.mark.parametrize("change, error", [
    ({"format": "deepgmap-model/0"}, "unsupported model file format 'deepgmap-model/0'"),
    ({"window": None}, "model file without window"),
    ({"class_names": "CTCF"}, "malformed deepgmap.json"),
    ({"split": {"held": ["chr22"]}}, "malformed deepgmap.json"),
    ({"windows_table": {"flank": "wide"}}, "malformed deepgmap.json"),
    ({"one_hot_order": "ACGT"}, "trained with one-hot order 'ACGT'"),
])
def test_a_foreign_or_damaged_model_description_is_refused(test_data, tmp_path, change, error):
    """The model file's description (ModelInfo) is read in one place, which names what is wrong."""
    source, path = test_data / "CTCF_chr20.keras", tmp_path / "m.keras"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            if item.filename == "deepgmap.json":
                entry = {**json.loads(data), **change}
                data = json.dumps({k: v for k, v in entry.items() if v is not None}).encode()
            copy.writestr(item, data)
    with pytest.raises(InputError, match=error):
        load_model(str(path))
    assert read_model_info(str(source)).labelled_window == 200


def test_a_global_pool_model_reads_windows_longer_than_its_training_windows(genome, windows, test_data):
    """conv3-frss-bn trained on 200 bp scores 1 kb windows (its features are maxed over positions);
    a Flatten model refuses them, and so does the evaluation's check."""
    x = one_hot_windows(genome, ["chr20"] * 2, [1_000_000, 2_000_000], 1000)
    pooled = build_model("conv3-frss-bn", 1, 200, TINY, "he")
    assert keras.ops.convert_to_numpy(pooled(x)).shape == (2, 1)
    with pytest.raises(ValueError):
        build_model("conv4-frss", 1, 200, TINY)(x)
    table = read_windows_table(windows)
    stored = read_model_info(str(test_data / "CTCF_chr20_frss_bn.keras"))
    assert stored.window == 200
    check_table_for_model(table, dataclasses.replace(stored, class_names=table.class_names), genome)
    with pytest.raises(InputError, match="the model reads 200 bp"):
        check_table_for_model(table, dataclasses.replace(stored, class_names=table.class_names, model="conv4-frss"),
                              genome)


def test_valid_loss_computed_in_blocks_is_the_mean_cross_entropy(windows):
    """The blocks (bounded memory for a genome's valid windows) change nothing: the mean binary
    cross-entropy over every window and class of the real table, whatever the block size."""
    from deepgmap_core.training import binary_cross_entropy

    labels = read_windows_table(windows).labels
    predictions = np.random.default_rng(0).uniform(0, 1, labels.shape).astype(np.float32)
    predictions[:5] = labels[:5]  # 0 and 1 exactly: clipped, not infinite
    p = np.clip(predictions.astype(np.float64), 1e-7, 1 - 1e-7)
    expected = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    for block in (1, 1000, len(labels) + 1):
        assert binary_cross_entropy(labels, predictions, block) == pytest.approx(expected, rel=1e-6)
