"""Probabilities at the genome's class balance, and peak thresholds chosen on held-out chromosomes.

make-training-windows keeps every train row that is positive for some class, but each all-zero
row only with probability keep_negatives (valid and test rows are all kept). A model fit to
that table predicts at the table's class balance: on the example chr20 CTCF windows at keep
0.1, about half the train windows are positive where 8% of the genome's are. Under a prior
shift (the sequences of each label unchanged, only their proportions), the genome's posterior
log-odds are the table's plus log(odds_genome) - log(odds_train) (Saerens et al. 2002,
Neural Computation 14:21), the genome's prevalence counting each kept all-zero row 1/keep
times. Exact for one class; with several, the rows negative for a class but positive for
another were all kept, so the shift is an approximation there.
"""

import numpy as np

from .bounds import POSITIVE_PROBABILITY, PROBABILITY
from .scoring import Ranking, precision_recall
from .windows import LABEL_BLOCK, label_sums

DEFAULT_PEAK_PRECISION = 0.5
FALLBACK_THRESHOLD = 0.5   # a model file without a chosen threshold (or a class without valid positives)
CORRECTION = ("prior shift for the negative subsampling of the training windows: "
              "logit(p_genome) = logit(p_model) + log(odds of the genome) - log(odds of the train windows)")


def kept_negative_fraction(table):
    """The fraction of all-zero train rows the windows table kept (1 when it does not say, and
    when it kept none: then no row stands for others)."""
    keep = float(table.metadata.get("keep_negatives", 1) or 1)
    return keep if keep > 0 else 1.0


def negative_weights(table, rows):
    """Train-split negatives were kept with probability keep_negatives: each stands for 1/keep of them."""
    weights = np.ones(len(rows))
    positive = np.concatenate([table.labels[rows[first:first + LABEL_BLOCK]].any(axis=1)
                               for first in range(0, len(rows), LABEL_BLOCK)] or [np.zeros(0, dtype=bool)])
    negatives = (table.splits[rows] == "train") & ~positive
    weights[negatives] = 1 / kept_negative_fraction(table)
    return weights


def class_balance(table):
    """Per class, (prevalence among the train windows, prevalence on the train chromosomes
    that they stand for): all-zero rows weighted 1/keep_negatives."""
    rows = np.flatnonzero(table.splits == "train")
    weights = negative_weights(table, rows)
    return label_sums(table, rows) / len(rows), label_sums(table, rows, weights) / weights.sum()


def logit(p):
    return np.log(p) - np.log1p(-p)


def prior_shift_offsets(train_prevalence, genome_prevalence):
    """log(odds_genome) - log(odds_train) per class; 0 where either prevalence is 0 or 1
    (a class without train positives, or a table without negatives: nothing to correct by)."""
    train, genome = np.asarray(train_prevalence, float), np.asarray(genome_prevalence, float)
    defined = (0 < train) & (train < 1) & (0 < genome) & (genome < 1)
    offsets = np.zeros(len(train))
    offsets[defined] = logit(genome[defined]) - logit(train[defined])
    return offsets


def shift_probabilities(probabilities, offsets):
    """sigmoid(logit(p) + offset) per class (the last axis), as p e / (p e + 1 - p) with
    e = exp(offset): exact at p = 0 and 1, no clipping."""
    p = np.asarray(probabilities, dtype=np.float64)
    scaled = p * np.exp(np.asarray(offsets, dtype=np.float64))
    return (scaled / (scaled + 1 - p)).astype(np.asarray(probabilities).dtype)


def logit_offsets(info):
    """The model file's offsets per class, or None for a model file without them (trained
    before the correction existed): its outputs stay at the training windows' balance."""
    calibration = info.calibration
    if not calibration:
        return None
    return np.array([c["logit_offset"] for c in calibration["classes"]])


def genome_probabilities(predictions, info):
    """Model outputs (windows, classes) as probabilities at the genome's class balance."""
    offsets = logit_offsets(info)
    return predictions if offsets is None else shift_probabilities(predictions, offsets)


def describe_probabilities(info):
    """One line for logs and provenance: what the written probabilities are."""
    calibration = info.calibration
    if not calibration:
        return ("probabilities at the class balance of the model's training windows (the model file has no "
                "class-balance correction: it was trained before deepgmap recorded one)")
    balance = ", ".join(f"{c['class']} {c['train_prevalence']:.3g} -> {c['genome_prevalence']:.3g}"
                        for c in calibration["classes"])
    approximate = (", on average over GC: the negatives were GC-matched"
                   if calibration.get("negatives") == "gc-matched" else "")
    return (f"probabilities at the genome's class balance (corrected for the training windows' negative "
            f"subsampling, keep_negatives {calibration['keep_negatives']:g}{approximate}; positive fraction train "
            f"windows -> train chromosomes: {balance})")


def check_peak_precision(precision):
    POSITIVE_PROBABILITY.check(precision, "--peak-precision")


def precision_threshold(truth, scores, precision):
    """(threshold, its precision, its recall, how it was chosen): the smallest threshold on
    `scores` whose calls (score >= threshold) reach `precision` (the most recall at that
    precision); when none does, the threshold of the best F1, and the rule says so. Without
    any positive, precision and recall are None (the model file is JSON: no NaN)."""
    if not 0 < truth.sum():
        return (FALLBACK_THRESHOLD, None, None,
                f"no positive valid window: the fixed {FALLBACK_THRESHOLD}, not chosen on data")
    ranking = Ranking(scores)
    precisions, recalls = precision_recall(*ranking.counts(truth))
    # From the lowest threshold up: the first reaching the precision, and the lowest of equal F1s.
    precisions, recalls, thresholds = precisions[::-1], recalls[::-1], ranking.thresholds[::-1]
    reaching = np.flatnonzero(precisions >= precision)
    if len(reaching):
        best = reaching[0]
        rule = f"the smallest with precision >= {precision:g} on the valid windows"
    else:
        f1 = np.where(precisions + recalls > 0, 2 * precisions * recalls / np.maximum(precisions + recalls, 1e-300), 0)
        best = int(np.argmax(f1))
        rule = (f"no threshold reaches precision {precision:g} on the valid windows (at most "
                f"{precisions.max():.3f}): the one of the best F1")
    return float(thresholds[best]), float(precisions[best]), float(recalls[best]), rule


def calibration_entry(table, valid_rows, valid_predictions, peak_precision=DEFAULT_PEAK_PRECISION):
    """The model file's `calibration` entry: per class the class balance of the train windows and
    of the chromosomes they stand for, the logit offset between them, and the peak threshold
    chosen on the corrected predictions for the valid windows `valid_rows` of `table`."""
    check_peak_precision(peak_precision)
    train, genome = class_balance(table)
    offsets = prior_shift_offsets(train, genome)
    labels = table.labels[valid_rows]
    classes = []
    for i, name in enumerate(table.class_names):  # a class at a time: float64 copies of all are GBs
        corrected = shift_probabilities(np.asarray(valid_predictions[:, i], dtype=np.float64), offsets[i])
        threshold, precision, recall, rule = precision_threshold(labels[:, i], corrected, peak_precision)
        classes.append({"class": name, "train_prevalence": float(train[i]), "genome_prevalence": float(genome[i]),
                        "logit_offset": float(offsets[i]), "threshold": threshold, "threshold_precision": precision,
                        "threshold_recall": recall, "threshold_rule": rule})
    # gc-matched negatives were kept with a probability per GC bin, keep_negatives on average:
    # one offset per class then corrects the overall balance, not each GC bin's.
    return {"correction": CORRECTION, "keep_negatives": kept_negative_fraction(table),
            "negatives": table.metadata.get("negatives", "random"),
            "peak_precision": peak_precision, "valid_chroms": sorted(set(table.chroms[valid_rows].tolist())),
            "valid_windows": int(len(valid_rows)), "classes": classes}


def threshold_description(entry):
    """How a class's threshold was chosen, with its valid precision and recall."""
    text = entry["threshold_rule"]
    if entry["threshold_precision"] is not None:
        text += f" (valid precision {entry['threshold_precision']:.3f}, recall {entry['threshold_recall']:.3f})"
    return text


def calibration_lines(info):
    """Lines for the log: per class the correction and the chosen peak threshold."""
    calibration = info.calibration
    return [f"{c['class']}: positive fraction {c['train_prevalence']:.4f} in the train windows, "
            f"{c['genome_prevalence']:.4f} on the train chromosomes (logit offset {c['logit_offset']:+.3f}); "
            f"peak threshold {c['threshold']:.4g} on {', '.join(calibration['valid_chroms'])}: "
            f"{threshold_description(c)}" for c in calibration["classes"]]


def peak_thresholds(info, threshold="auto"):
    """Per class (threshold, how it was chosen) for predicted peaks: `threshold` 'auto' takes the
    model file's (chosen on the valid chromosomes), a probability is used for every class."""
    classes = info.class_names
    if threshold != "auto":
        PROBABILITY.check(threshold, "--threshold")
        return [(threshold, f"given (--threshold {threshold:g})")] * len(classes)
    calibration = info.calibration
    if not calibration:
        return [(FALLBACK_THRESHOLD, f"the model file holds no threshold chosen on validation (trained before "
                                     f"deepgmap recorded one): the fixed {FALLBACK_THRESHOLD}")] * len(classes)
    valid = ", ".join(calibration["valid_chroms"])
    return [(c["threshold"], f"chosen on the valid chromosomes ({valid}) for precision "
                             f"{calibration['peak_precision']:g}: {threshold_description(c)}")
            for c in calibration["classes"]]
