"""AUROC and AUPRC (deepgmap_core.scoring) against scikit-learn's roc_auc_score and
average_precision_score, on real windows: the labels of test-data/windows.tsv (hg19 CTCF and
H3K4me3) scored by their GC content (many ties) and by a model's predictions, with and without
the weights of subsampled negatives; a score shared by every class; one-label and empty classes;
the peak threshold against the one read off sklearn's precision_recall_curve."""

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from deepgmap_core.baselines import gc_fraction
from deepgmap_core.calibration import negative_weights, precision_threshold
from deepgmap_core.genome import Genome, one_hot_windows
from deepgmap_core.models.files import load_model
from deepgmap_core.predict import predict_batch
from deepgmap_core.scoring import Ranking, score_predictions
from deepgmap_core.windows import read_windows_table


@pytest.fixture(scope="module")
def windows(test_data):
    """Every window of test-data/windows.tsv: the table, its labels, the GC fraction of each
    window (a score with many ties) and the weights of its subsampled negatives."""
    table = read_windows_table(str(test_data / "windows.tsv"))
    rows = np.arange(len(table.starts))
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        gc = gc_fraction(one_hot_windows(genome, table.chroms, table.starts, int(table.ends[0] - table.starts[0])))
    return table, table.labels, gc, negative_weights(table, rows)


def sklearn_scores(labels, predictions, weights=None):
    """AUROC and AUPRC of each class in turn, by scikit-learn."""
    return [metric(labels[:, i], predictions[:, i], sample_weight=weights)
            for i in range(labels.shape[1]) for metric in (roc_auc_score, average_precision_score)]


def our_scores(labels, predictions, class_names, weights=None):
    return [s[key] for s in score_predictions(labels, predictions, class_names, weights) for key in ("auroc", "auprc")]


@pytest.mark.parametrize("weighted", [False, True])
def test_scores_are_sklearns_on_real_windows(windows, weighted):
    table, labels, gc, weights = windows
    weights = weights if weighted else None
    assert len(np.unique(gc)) < len(gc) / 2  # ties, which both must treat as one threshold
    assert not weighted or len(np.unique(weights)) > 1  # kept negatives stand for several windows
    rng = np.random.default_rng(0)
    # GC with a class-dependent noise of a few distinct values (more ties), and GC alone
    predictions = np.stack([gc + rng.integers(0, 3, len(gc)) / 50 for _ in table.class_names], axis=1)
    for scores in (predictions, np.repeat(gc[:, None], len(table.class_names), axis=1)):
        assert our_scores(labels, scores, table.class_names, weights) == pytest.approx(
            sklearn_scores(labels, scores, weights), rel=1e-12, abs=1e-12)


def test_a_score_shared_by_every_class_is_ranked_once_with_the_same_result(windows):
    table, labels, gc, weights = windows
    shared = score_predictions(labels, gc, table.class_names, weights)
    per_class = score_predictions(labels, np.repeat(gc[:, None], labels.shape[1], axis=1), table.class_names, weights)
    assert shared == per_class


def test_model_predictions_score_as_in_sklearn(windows, test_data):
    table, labels, _, weights = windows
    model, _ = load_model(str(test_data / "model.keras"))
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        rows = np.flatnonzero(table.splits != "train")
        x = one_hot_windows(genome, table.chroms[rows], table.starts[rows], int(table.ends[0] - table.starts[0]))
    predictions = predict_batch(model, x)
    assert our_scores(labels[rows], predictions, table.class_names, weights[rows]) == pytest.approx(
        sklearn_scores(labels[rows], predictions, weights[rows]), rel=1e-12, abs=1e-12)


def test_one_label_or_no_window_gives_nan():
    labels = np.array([[1, 0], [1, 0], [1, 0]], dtype=np.uint8)
    scores = score_predictions(labels, np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]), ["all", "none"])
    assert all(math.isnan(s[key]) for s in scores for key in ("auroc", "auprc"))
    assert [(s["positives"], s["windows"]) for s in scores] == [(3, 3), (0, 3)]
    (empty,) = score_predictions(np.zeros((0, 1), dtype=np.uint8), np.zeros((0, 1)), ["empty"])
    assert math.isnan(empty["auroc"]) and math.isnan(empty["auprc"]) and empty["windows"] == 0


def test_equal_scores_are_chance_and_nan_is_refused():
    labels = np.array([[1], [0], [0], [1], [0]], dtype=np.uint8)
    (score,) = score_predictions(labels, np.full((5, 1), 0.3), ["tied"])
    assert score["auroc"] == 0.5 and score["auprc"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="NaN"):
        Ranking(np.array([0.1, np.nan]))


def sklearn_threshold(truth, scores, precision):
    """The smallest threshold reaching `precision`, read off sklearn's precision_recall_curve."""
    precisions, recalls, thresholds = precision_recall_curve(truth, scores)
    reaching = np.flatnonzero(precisions[:-1] >= precision)
    return float(thresholds[reaching[0]]), float(precisions[reaching[0]]), float(recalls[reaching[0]])


def test_peak_threshold_is_the_one_of_sklearns_curve(windows):
    table, labels, gc, _ = windows
    compared = 0
    for i in range(labels.shape[1]):
        for precision in (0.2, 0.3, 0.5):
            if (precision_recall_curve(labels[:, i], gc)[0][:-1] >= precision).any():
                assert precision_threshold(labels[:, i], gc, precision)[:3] == pytest.approx(
                    sklearn_threshold(labels[:, i], gc, precision), rel=1e-12)
                compared += 1
    assert compared >= 2
