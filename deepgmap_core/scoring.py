"""Scores of predictions against labels: AUROC and AUPRC per class, and their mean.

They follow scikit-learn's roc_auc_score and average_precision_score (windows with equal scores
form one threshold; AUPRC is the average precision), computed here from one ranking of the
windows: those functions validate and sort their input anew for every class, which at hundreds
of classes and a genome's held-out windows took longer than predicting them, and a score that
every class shares (a baseline's) is ranked once here."""

import math

import numpy as np


class Ranking:
    """The windows ordered by `scores` (1-D), highest first, and the last position of each
    distinct score in that order: the thresholds of the ROC and precision-recall curves."""

    def __init__(self, scores):
        scores = np.asarray(scores)
        if not np.isfinite(scores).all():
            raise ValueError("scores contain NaN or infinity")
        self.order = np.argsort(scores, kind="mergesort")[::-1]
        ranked = scores[self.order]
        self.ends = np.append(np.flatnonzero(np.diff(ranked)), len(scores) - 1) if len(scores) else np.zeros(0, int)
        self.thresholds = ranked[self.ends]

    def counts(self, truth, weights=None):
        """(true positives, false positives) of calling the windows at or above each threshold,
        highest threshold first; `weights` (per window) count a window as that many."""
        hits = np.asarray(truth, dtype=bool)[self.order]
        if weights is None:
            true_positives = np.cumsum(hits, dtype=np.float64)[self.ends]
            return true_positives, self.ends + 1 - true_positives
        weights = np.asarray(weights, dtype=np.float64)[self.order]
        return (np.cumsum(np.where(hits, weights, 0.0))[self.ends],
                np.cumsum(np.where(hits, 0.0, weights))[self.ends])


def has_both_labels(true_positives, false_positives):
    """Whether Ranking.counts saw a positive and a negative (a curve exists)."""
    return bool(len(true_positives) and true_positives[-1] > 0 and false_positives[-1] > 0)


def precision_recall(true_positives, false_positives):
    """Precision (0 where nothing is called) and recall at each threshold of Ranking.counts."""
    called = true_positives + false_positives
    precision = np.divide(true_positives, called, out=np.zeros_like(called), where=called > 0)
    return precision, true_positives / true_positives[-1]


def roc_points(true_positives, false_positives):
    """(false positive rates, true positive rates) at each threshold of Ranking.counts, from the origin."""
    return (np.append(0.0, false_positives) / false_positives[-1],
            np.append(0.0, true_positives) / true_positives[-1])


def auroc(true_positives, false_positives):
    """Area under the ROC curve (trapezoids from the origin); NaN without both labels."""
    if not has_both_labels(true_positives, false_positives):
        return math.nan
    false_rates, true_rates = roc_points(true_positives, false_positives)
    return float(np.trapezoid(true_rates, false_rates))


def average_precision(true_positives, false_positives):
    """Precision at each threshold weighted by the recall it adds; NaN without both labels."""
    if not has_both_labels(true_positives, false_positives):
        return math.nan
    precision, recall = precision_recall(true_positives, false_positives)
    return float(max(0.0, np.sum(np.diff(recall, prepend=0.0) * precision)))


def score_predictions(labels, predictions, class_names, weights=None):
    """Per class: AUROC, AUPRC, positives, windows (NaN where a class has one label only).
    `predictions` is (windows, classes), or (windows,) for one score shared by every class.
    `weights` (per window) let sampled-out negatives count as the windows they stand for."""
    shared = Ranking(predictions) if np.ndim(predictions) == 1 else None
    scores = []
    for i, name in enumerate(class_names):
        truth = labels[:, i]
        counts = (shared or Ranking(predictions[:, i])).counts(truth, weights)
        scores.append({"class": name, "auroc": auroc(*counts), "auprc": average_precision(*counts),
                       "positives": int(np.count_nonzero(truth)), "windows": int(len(truth))})
    return scores


def mean_of(scores, key):
    values = [s[key] for s in scores if not math.isnan(s[key])]
    return float(np.mean(values)) if values else math.nan
