"""Probabilities at the genome's class balance and peak thresholds chosen on validation
(deepgmap_core.calibration), on real windows: a model trained on subsampled negatives gives
back the prevalence of held-out windows once corrected, and not before; each class's
threshold reaches the stated precision on the valid windows and is the smallest that does;
the fallback when none does; bad --peak-precision."""

import math

import numpy as np
import pytest

from deepgmap_core.calibration import calibration_entry, genome_probabilities, precision_threshold
from deepgmap_core.cli.make_training_windows import main as make_windows
from deepgmap_core.errors import InputError
from deepgmap_core.genome import Genome, one_hot_windows
from deepgmap_core.predict import predict_batch
from deepgmap_core.settings import TrainSettings
from deepgmap_core.training import train_model
from deepgmap_core.windows import WindowsTable, read_windows_table

KEEP = 0.2
BLOCK = 250_000


@pytest.fixture(scope="module")
def genome(test_data):
    with Genome(str(test_data / "genome.fa.gz")) as handle:
        yield handle


@pytest.fixture(scope="module")
def table(test_data, tmp_path_factory):
    """Every 1 kb window of the real chr20 piece (CTCF), in 250 kb blocks taken alternately for
    training, where all-zero windows are kept with probability KEEP (as make-training-windows
    does), and held out, where every third window is kept (900 bp apart; no negatives dropped):
    held-out windows of the same chromosome, so of the same prevalence as the training ones."""
    path = tmp_path_factory.mktemp("windows") / "all.tsv"
    assert make_windows(["--genome", str(test_data / "genome.fa.gz"), "--peaks", str(test_data / "CTCF.bed"),
                         "--names", "CTCF", "--blacklist", str(test_data / "blacklist.bed"), "--keep-negatives", "1",
                         "--seed", "1", "-o", str(path)]) == 0
    every = read_windows_table(str(path))
    block = every.starts // BLOCK
    inside = (every.chroms == "chr20") & ((every.ends - 1) // BLOCK == block)
    train = inside & (block % 2 == 0) & (every.labels.any(axis=1)
                                         | (np.random.default_rng(5).random(len(block)) < KEEP))
    held_out = inside & (block % 2 == 1) & (every.starts // int(every.metadata["stride"]) % 3 == 0)
    rows = train | held_out
    return WindowsTable(dict(every.metadata, keep_negatives=str(KEEP)), every.class_names, every.chroms[rows],
                        every.starts[rows], every.ends[rows], np.where(train, "train", "valid")[rows],
                        every.labels[rows])


@pytest.fixture(scope="module")
def trained(genome, table, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "model.keras")
    model, info = train_model(genome, table, TrainSettings(model="conv4-frss", width_scale=0.1, epochs=1,
                                                               steps_per_epoch=20, batch_size=64, seed=1), path, "test")
    valid = np.flatnonzero(table.splits == "valid")
    x = one_hot_windows(genome, table.chroms[valid], table.starts[valid], 1000)
    # scored as train-model scores it: on both strands when the recipe trained on both
    raw = predict_batch(model, x, info.rc_average)[:, 0].astype(np.float64)
    return info, raw, table.labels[valid, 0]


def test_the_correction_is_the_prior_shift_of_the_kept_negatives(table, trained):
    info, raw, truth = trained
    (entry,) = info.calibration["classes"]
    train = table.labels[table.splits == "train", 0]
    negatives = (train == 0).sum()
    assert entry["train_prevalence"] == pytest.approx(train.mean())
    assert entry["genome_prevalence"] == pytest.approx(train.sum() / (train.sum() + negatives / KEEP))
    # One class: the odds shrink by exactly the kept fraction of the negatives.
    assert entry["logit_offset"] == pytest.approx(math.log(KEEP))
    assert len(truth) > 2000 and 0.05 < truth.mean() < 0.12
    assert raw.mean() > 2 * truth.mean()  # as trained, at the training windows' balance


def test_a_trained_model_corrected_comes_near_the_held_out_prevalence(genome, test_data, tmp_path):
    """The shipped CTCF model (20 minutes on hg19 chr20 200 bp windows, 8% of the negatives kept) on
    every 200 bp window of the real chr22 piece outside the blacklist, none dropped: as trained its
    mean prediction is about 8 times the real share of CTCF windows; corrected, within a factor of
    2 of it. (Not closer: the correction is exact for a model calibrated on its training windows,
    and a network trained with strand and shift augmentation is so only roughly: 1.6 times high.)"""
    from deepgmap_core.models.files import load_model

    path = tmp_path / "w200.tsv"
    assert make_windows(["--genome", str(test_data / "genome.fa.gz"), "--peaks", str(test_data / "CTCF.bed"),
                         "--names", "CTCF", "--window", "200", "--stride", "100", "--keep-negatives", "1",
                         "--blacklist", str(test_data / "blacklist.bed"), "--valid-chroms", "chr22",
                         "-o", str(path)]) == 0
    windows = read_windows_table(str(path))
    rows = np.flatnonzero(windows.chroms == "chr22")
    model, info = load_model(str(test_data / "CTCF_chr20_frss_bn.keras"))
    x = one_hot_windows(genome, windows.chroms[rows], windows.starts[rows], 200)
    raw = np.concatenate([predict_batch(model, part, info.rc_average) for part in np.array_split(x, 4)])
    corrected = genome_probabilities(raw, info)[:, 0]
    prevalence = windows.labels[rows, 0].mean()
    print(f"chr22 prevalence {prevalence:.4f}: mean prediction {raw.mean():.4f} as trained, "
          f"{corrected.mean():.4f} corrected")
    assert len(rows) > 5000 and 0.01 < prevalence < 0.1
    assert raw.mean() > 4 * prevalence
    assert prevalence / 2 < corrected.mean() < 2 * prevalence


ROUNDING = 1e-12   # the test's corrected values differ from the library's in the last bits


def precision_at(truth, scores, threshold):
    calls = scores >= threshold - ROUNDING
    return truth[calls].mean(), truth[calls].sum() / truth.sum()


def check_smallest_reaching(truth, scores, threshold, precision):
    """`threshold` reaches `precision`, and no lower score does (computed from sorted scores)."""
    assert precision_at(truth, scores, threshold)[0] >= precision
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(truth[order]) / np.arange(1, len(order) + 1)
    # The precision of calling every window down to a score, at the last window of each score.
    last_of_score = np.r_[scores[order][1:] != scores[order][:-1], True]
    below = scores[order][last_of_score] < threshold - ROUNDING
    assert (hits[last_of_score][below] < precision).all()


def test_threshold_reaches_the_precision_on_the_valid_windows(table, trained):
    info, raw, truth = trained
    (entry,) = info.calibration["classes"]
    corrected = 1 / (1 + np.exp(-(np.log(raw / (1 - raw)) + entry["logit_offset"])))
    assert info.calibration["peak_precision"] == 0.5 and info.calibration["valid_chroms"] == ["chr20"]
    precision, recall = precision_at(truth, corrected, entry["threshold"])
    assert entry["threshold_precision"] == pytest.approx(precision, abs=1e-6)
    assert entry["threshold_recall"] == pytest.approx(recall, abs=1e-6)
    if entry["threshold_rule"].startswith("the smallest"):
        check_smallest_reaching(truth, corrected, entry["threshold"], 0.5)
    # A precision between the prevalence and the best reached: reachable, and not by calling everything.
    order = np.argsort(-corrected)
    best = (np.cumsum(truth[order]) / np.arange(1, len(order) + 1)).max()
    target = (truth.mean() + best) / 2
    valid = np.flatnonzero(table.splits == "valid")
    (chosen,) = calibration_entry(table, valid, raw[:, None], target)["classes"]
    assert chosen["threshold_rule"] == f"the smallest with precision >= {target:g} on the valid windows"
    check_smallest_reaching(truth, corrected, chosen["threshold"], target)


def test_no_threshold_reaching_the_precision_falls_back_to_the_best_f1_and_says_so():
    truth = np.array([0, 1, 0, 1, 1, 0, 0, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    # Calling down to 0.5 gives precision 3/5, recall 3/4: the best F1 (0.667); no cut reaches 0.9.
    threshold, precision, recall, rule = precision_threshold(truth, scores, 0.9)
    assert (threshold, precision, recall) == pytest.approx((0.5, 0.6, 0.75))
    assert rule.startswith("no threshold reaches precision 0.9") and "best F1" in rule
    threshold, precision, _, rule = precision_threshold(np.zeros(4), scores[:4], 0.5)
    assert threshold == 0.5 and precision is None and "no positive valid window" in rule


def test_bad_peak_precision(genome, table, tmp_path):
    with pytest.raises(InputError, match=r"--peak-precision must be within \(0, 1\], got 0"):
        train_model(genome, table, TrainSettings(model="conv4-frss", width_scale=0.05, epochs=1, steps_per_epoch=1,
                                                 batch_size=8), str(tmp_path / "m.keras"), "test", peak_precision=0)
