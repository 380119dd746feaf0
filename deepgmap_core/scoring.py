"""Scores of predictions against labels: AUROC and AUPRC per class, and their mean."""

import math

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def score_predictions(labels, predictions, class_names, weights=None):
    """Per class: AUROC, AUPRC, positives, windows (NaN where a class has one label only).
    `weights` (per window) let sampled-out negatives count as the windows they stand for."""
    scores = []
    for i, name in enumerate(class_names):
        truth = labels[:, i]
        both = 0 < truth.sum() < len(truth)
        scores.append({"class": name,
                       "auroc": roc_auc_score(truth, predictions[:, i], sample_weight=weights) if both else math.nan,
                       "auprc": average_precision_score(truth, predictions[:, i], sample_weight=weights)
                       if both else math.nan,
                       "positives": int(truth.sum()), "windows": int(len(truth))})
    return scores


def mean_of(scores, key):
    values = [s[key] for s in scores if not math.isnan(s[key])]
    return float(np.mean(values)) if values else math.nan
