"""Benchmark: scoring held-out windows at hundreds of classes (issue 18: train-model scores the
valid windows every epoch, then the test windows, the baselines and the peak thresholds).

Synthetic labels (each class's prevalence drawn between 0.5% and 10%) and float32 predictions
that rank positives a little higher, --windows x --classes: deepgmap_core.scoring's AUROC and
AUPRC per class, beside the baseline measured in the same run, scikit-learn's roc_auc_score and
average_precision_score per class (what the suite called before); then one score shared by every
class (a GC baseline), ranked once; then the peak threshold of every class beside the one read
off sklearn's precision_recall_curve. The results are checked to agree (1e-9).

Usage: python benchmarks/scoring.py [--windows 160000] [--classes 400]
"""

import argparse
import time

import numpy as np


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=160_000, help="held-out windows (chr9 of hg19: about 160k)")
    parser.add_argument("--classes", type=int, default=400)
    args = parser.parse_args()
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

    from deepgmap_core.calibration import precision_threshold
    from deepgmap_core.scoring import score_predictions

    rng = np.random.default_rng(0)
    n, classes = args.windows, args.classes
    labels = (rng.random((n, classes), dtype=np.float32) < rng.uniform(0.005, 0.1, classes)).astype(np.uint8)
    predictions = (rng.random((n, classes), dtype=np.float32) + 0.5 * labels).astype(np.float32)
    names = [f"class{i}" for i in range(classes)]
    print(f"{time.strftime('%Y-%m-%d')}: {n:,} windows x {classes} classes, float32 predictions", flush=True)

    ours, seconds = timed(lambda: score_predictions(labels, predictions, names))
    theirs, baseline = timed(lambda: [(roc_auc_score(labels[:, i], predictions[:, i]),
                                       average_precision_score(labels[:, i], predictions[:, i]))
                                      for i in range(classes)])
    assert np.allclose([(s["auroc"], s["auprc"]) for s in ours], theirs, rtol=1e-9, atol=1e-12)
    print(f"  AUROC + AUPRC per class, sklearn (baseline): {baseline:7.2f} s", flush=True)
    print(f"  AUROC + AUPRC per class, deepgmap_core:      {seconds:7.2f} s = {baseline / seconds:5.1f}x faster",
          flush=True)

    gc = predictions[:, 0].astype(np.float64)
    _, shared = timed(lambda: score_predictions(labels, gc, names))
    _, repeated = timed(lambda: score_predictions(labels, np.repeat(gc[:, None], classes, axis=1), names))
    print(f"  one score for every class (a GC baseline): ranked once {shared:6.2f} s, per class {repeated:6.2f} s",
          flush=True)

    def sklearn_threshold(i):
        precisions, _, thresholds = precision_recall_curve(labels[:, i], predictions[:, i])
        return thresholds[np.flatnonzero(precisions[:-1] >= 0.5)[0]]

    thresholds, seconds = timed(lambda: [precision_threshold(labels[:, i], predictions[:, i], 0.5)[0]
                                         for i in range(classes)])
    expected, baseline = timed(lambda: [sklearn_threshold(i) for i in range(classes)])
    assert np.allclose(thresholds, expected, rtol=0, atol=0)
    print(f"  peak threshold per class, sklearn's curve (baseline): {baseline:6.2f} s, deepgmap_core: {seconds:6.2f} s "
          f"= {baseline / seconds:5.1f}x faster", flush=True)


if __name__ == "__main__":
    main()
