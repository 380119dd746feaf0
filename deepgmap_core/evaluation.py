"""Held-out evaluation of a model on a make-training-windows table, matched by coordinates,
with the paper's overfitting test."""

import math

import numpy as np

from .errors import InputError
from .progress import warn
from .training import check_table_on_genome, mean_of, predict_rows, score_predictions, split_rows
from .windows import SPLITS

OVERFIT_GAP = 0.1  # mean AUPRC on a training chromosome above the test chromosomes' by more: warn


def check_table_for_model(table, metadata, genome):
    check_table_on_genome(table, genome)
    window = int(metadata["window"])
    sizes = np.unique(table.ends - table.starts)
    if len(sizes) != 1 or sizes[0] != window:
        raise InputError(f"the windows table has windows of {', '.join(map(str, sizes[:3]))} bp, "
                         f"the model reads {window} bp")
    if table.class_names != metadata["class_names"]:
        raise InputError(f"the windows table's classes ({', '.join(table.class_names)}) are not the model's "
                         f"({', '.join(metadata['class_names'])})")


def negative_weights(table, rows):
    """Train-split negatives were kept with probability keep_negatives: each stands for 1/keep of them."""
    keep = float(table.metadata.get("keep_negatives", 1) or 1)
    weights = np.ones(len(rows))
    negatives = (table.splits[rows] == "train") & ~table.labels[rows].any(axis=1)
    weights[negatives] = 1 / keep
    return weights


def evaluate(model, genome, table, batch_size=256, max_windows=0, seed=0, threads=1):
    """Scores per split and class, and the overfitting test: the train chromosome with the most
    windows against the test split (or valid, without test)."""
    results = {"splits": {}, "overfitting": None, "predictions": {}}
    for split in SPLITS:
        rows = split_rows(table, split, max_windows, seed)
        if len(rows) == 0:
            continue
        predictions = predict_rows(model, genome, table, rows, batch_size, threads)
        labels = table.labels[rows]
        results["predictions"][split] = (rows, predictions)
        results["splits"][split] = score_predictions(labels, predictions, table.class_names,
                                                     negative_weights(table, rows))
    held_out = "test" if "test" in results["splits"] else "valid" if "valid" in results["splits"] else None
    if "train" in results["predictions"] and held_out:
        rows, predictions = results["predictions"]["train"]
        chroms, counts = np.unique(table.chroms[rows], return_counts=True)
        chrom = str(chroms[np.argmax(counts)])
        on_chrom = table.chroms[rows] == chrom
        train_scores = score_predictions(table.labels[rows][on_chrom], predictions[on_chrom], table.class_names,
                                         negative_weights(table, rows[on_chrom]))
        gap = mean_of(train_scores, "auprc") - mean_of(results["splits"][held_out], "auprc")
        results["overfitting"] = {"train_chrom": chrom, "held_out": held_out, "train": train_scores,
                                  "gap": gap, "warning": bool(not math.isnan(gap) and gap > OVERFIT_GAP)}
        if results["overfitting"]["warning"]:
            warn(f"overfitting: mean AUPRC on training chromosome {chrom} is {gap:.3f} above the {held_out} "
                 f"chromosomes' (the model may have memorised overlapping training windows)")
    return results


def evaluation_table(results, command_line):
    lines = ["##tool=predict-bigwig --evaluate", f"##command={command_line}",
             "#split\tchromosomes\tclass\tauroc\tauprc\tpositives\twindows"]
    rows = [(split, "all", scores) for split, scores in results["splits"].items()]
    if results["overfitting"]:
        rows.append(("train", results["overfitting"]["train_chrom"], results["overfitting"]["train"]))
    for split, chroms, scores in rows:
        lines += [f"{split}\t{chroms}\t{s['class']}\t{s['auroc']:.6f}\t{s['auprc']:.6f}\t{s['positives']}\t{s['windows']}"
                  for s in scores]
    if results["overfitting"]:
        o = results["overfitting"]
        lines.append(f"##overfitting_test: mean AUPRC on training chromosome {o['train_chrom']} minus "
                     f"{o['held_out']} = {o['gap']:.4f}{' (WARNING: large gap)' if o['warning'] else ''}")
    return "\n".join(lines) + "\n"


def curves_png(results, table):
    """ROC and PR curves per class and split, as PNG bytes."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    figure, (roc_axes, pr_axes) = plt.subplots(1, 2, figsize=(11, 4.5))
    for split, (rows, predictions) in results["predictions"].items():
        weights = negative_weights(table, rows)
        for i, name in enumerate(table.class_names):
            truth = table.labels[rows][:, i]
            if not 0 < truth.sum() < len(truth):
                continue
            fpr, tpr, _ = roc_curve(truth, predictions[:, i], sample_weight=weights)
            precision, recall, _ = precision_recall_curve(truth, predictions[:, i], sample_weight=weights)
            label = f"{name} ({split})"
            roc_axes.plot(fpr, tpr, label=label)
            pr_axes.plot(recall, precision, label=label)
    roc_axes.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc_axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr_axes.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
    for axes in (roc_axes, pr_axes):
        axes.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def evaluation_html(results, table, metadata):
    import base64
    from html import escape

    picture = base64.b64encode(curves_png(results, table)).decode()
    rows = "".join(f"<tr><td>{escape(split)}</td><td>{escape(s['class'])}</td><td>{s['auroc']:.4f}</td>"
                   f"<td>{s['auprc']:.4f}</td><td>{s['positives']:,}</td><td>{s['windows']:,}</td></tr>"
                   for split, scores in results["splits"].items() for s in scores)
    overfit = ""
    if results["overfitting"]:
        o = results["overfitting"]
        overfit = (f"<h2>Overfitting test</h2><p>Mean AUPRC on training chromosome {escape(o['train_chrom'])} "
                   f"minus the {o['held_out']} chromosomes': <b>{o['gap']:.4f}</b>"
                   f"{' &mdash; a large gap: the model may have memorised overlapping windows' if o['warning'] else ''}"
                   f".</p>")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>DeepGMAP evaluation: {escape(metadata['model'])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}}</style></head><body>
<h1>DeepGMAP evaluation</h1><p>Model {escape(metadata['model'])} (width x{metadata['width_scale']}); train-split
negatives weighted by 1/keep_negatives.</p>
<img alt="ROC and precision-recall curves" src="data:image/png;base64,{picture}">
<table><tr><th>split</th><th>class</th><th>AUROC</th><th>AUPRC</th><th>positives</th><th>windows</th></tr>{rows}</table>
{overfit}</body></html>
"""
