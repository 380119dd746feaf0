"""Held-out evaluation of a model on a make-training-windows table, matched by coordinates,
with the paper's overfitting test."""

import math

import numpy as np

from .baselines import baseline_scores, comparison_html
from .batching import predict_rows, split_rows
from .calibration import negative_weights
from .errors import InputError
from .fileio import provenance_lines
from .models import ARCHITECTURES, architecture
from .progress import message, warn
from .reports import embedded_png, figure_bytes, html_page, pyplot, scores_table
from .scoring import Ranking, has_both_labels, mean_of, precision_recall, roc_points, score_predictions
from .windows import SPLITS, check_table_on_genome

# Mean AUROC, or mean AUPRC over chance, on a training chromosome above the held-out chromosomes'
# by more: warn. Not the raw AUPRC gap: AUPRC grows with the prevalence, which differs between chromosomes.
OVERFIT_GAP = 0.1
OVERFITTING_COLUMNS = tuple(f"{metric}_{where}" for metric in ("auroc", "auprc", "prevalence", "auprc_over_chance")
                            for where in ("train", "held_out", "gap") if (metric, where) != ("prevalence", "gap"))
LEGEND_CURVES = 20  # curves named in the evaluation plot's legend


def check_table_for_model(table, info, genome):
    check_table_on_genome(table, genome)
    window = info.window
    sizes = np.unique(table.ends - table.starts)
    any_length = info.model in ARCHITECTURES and architecture(info.model).global_pool
    if len(sizes) != 1 or (sizes[0] != window and not (any_length and sizes[0] >= window)):
        raise InputError(f"the windows table has windows of {', '.join(map(str, sizes[:3]))} bp, "
                         f"the model reads {window} bp")
    if sizes[0] != window:
        message(f"scoring windows of {sizes[0]} bp with a {info.model} model trained on {window} bp windows "
                f"(its global max-pool reads any length)")
    if table.class_names != info.class_names:
        raise InputError(f"the windows table's classes ({', '.join(table.class_names)}) are not the model's "
                         f"({', '.join(info.class_names)})")


def evaluation_rows(table, max_windows=0, seed=0):
    """Split -> the rows evaluate scores (at most `max_windows` per split, a seeded subset)."""
    return {split: rows for split in SPLITS if len(rows := split_rows(table, split, max_windows, seed))}


class TrackedRows:
    """Predictions of a table's rows gathered from genome-wide prediction as it goes
    (predict.predict_tracks' on_windows): a window the tracks score at a row's labelled start is
    the row's window when the table's windows are the model's, so it is not predicted again."""

    def __init__(self, table, rows):
        self.rows = np.sort(np.concatenate([*rows.values(), np.zeros(0, dtype=np.int64)]))
        self.labelled_starts = table.starts[self.rows] + table.flank
        chroms = table.chroms[self.rows]
        self.by_chrom = {str(chrom): np.flatnonzero(chroms == chrom) for chrom in np.unique(chroms)}
        self.predictions = np.zeros((len(self.rows), len(table.class_names)), dtype=np.float32)
        self.found = np.zeros(len(self.rows), dtype=bool)

    def __call__(self, chrom, starts, predictions):
        here = self.by_chrom.get(chrom)
        if here is None or not len(starts):
            return
        index = np.minimum(np.searchsorted(starts, self.labelled_starts[here]), len(starts) - 1)
        hit = starts[index] == self.labelled_starts[here]
        self.predictions[here[hit]] = predictions[index[hit]]
        self.found[here[hit]] = True

    def known(self, rows):
        """(mask over `rows` of those already predicted, their predictions)."""
        at = np.searchsorted(self.rows, rows)
        mask = self.found[at]
        return mask, self.predictions[at[mask]]


def evaluate(model, genome, table, batch_size=256, max_windows=0, seed=0, threads=1, known_motifs=None,
             rc_average=False, tracked=None):
    """Scores per split and class, the overfitting test (the train chromosome with the most
    windows against the test split, or valid without test), and the baselines that need no
    training on the same held-out windows (GC, chance and, with `known_motifs` as read by
    motifs.read_motif_db, the best known motif chosen on the train split: deepgmap_core.baselines).
    `tracked` (a TrackedRows over evaluation_rows): rows whose predictions it holds are not predicted again."""
    results = {"splits": {}, "overfitting": None, "predictions": {}}
    reused = 0
    for split, rows in evaluation_rows(table, max_windows, seed).items():
        mask, predictions = tracked.known(rows) if tracked is not None else (np.zeros(len(rows), bool), None)
        if not mask.all():
            missing = predict_rows(model, genome, table, rows[~mask], batch_size, threads, rc_average=rc_average)
            predictions = missing if predictions is None else _merged(mask, predictions, missing)
        reused += int(mask.sum())
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
        held_out_rows = results["predictions"][held_out][0]
        classes = overfitting_by_class(train_scores, results["splits"][held_out],
                                       weighted_prevalence(table, rows[on_chrom]),
                                       weighted_prevalence(table, held_out_rows))
        gaps = {key: mean_of(classes, key) for key in ("auprc_gap", "auroc_gap", "auprc_over_chance_gap")}
        warning = any(gaps[key] > OVERFIT_GAP for key in ("auroc_gap", "auprc_over_chance_gap")
                      if not math.isnan(gaps[key]))
        results["overfitting"] = {"train_chrom": chrom, "held_out": held_out, "train": train_scores,
                                  "gap": gaps["auprc_gap"], "auroc_gap": gaps["auroc_gap"],
                                  "auprc_over_chance_gap": gaps["auprc_over_chance_gap"], "classes": classes,
                                  "warning": warning}
        if warning:
            warn(f"overfitting: on training chromosome {chrom} the mean AUROC is {gaps['auroc_gap']:.3f} and the mean "
                 f"AUPRC over chance {gaps['auprc_over_chance_gap']:.3f} above the {held_out} chromosomes' (the model "
                 f"may have memorised overlapping training windows)")
    if tracked is not None:
        message(f"evaluation: {reused:,} of {sum(len(r) for r, _ in results['predictions'].values()):,} windows "
                f"scored by the tracks' predictions, the rest predicted")
    baseline_rows = {split: results["predictions"][split][0] for split in ("valid", "test")
                     if split in results["predictions"]}
    results["baselines"] = baseline_scores(genome, table, baseline_rows, split_rows(table, "train", 0, seed),
                                           known_motifs, seed)
    return results


def _merged(mask, known, missing):
    predictions = np.empty((len(mask), known.shape[1]), dtype=np.float32)
    predictions[mask], predictions[~mask] = known, missing
    return predictions


def weighted_prevalence(table, rows):
    """Per class the positive fraction of `rows`, train-split negatives counted 1/keep_negatives
    times (the prevalence the weighted AUPRC is measured at)."""
    weights = negative_weights(table, rows)
    return weights @ table.labels[rows] / weights.sum()


def auprc_over_chance(auprc, prevalence):
    """(AUPRC - prevalence) / (1 - prevalence): 0 for a random ranking (whose AUPRC is the
    prevalence), 1 for a perfect one, so chromosomes of different prevalence compare."""
    return (auprc - prevalence) / (1 - prevalence) if prevalence < 1 else math.nan


def overfitting_by_class(train_scores, held_out_scores, train_prevalence, held_out_prevalence):
    """Per class the training chromosome's AUROC, AUPRC, prevalence and AUPRC over chance beside
    the held-out chromosomes', and each gap (training minus held-out)."""
    classes = []
    for train, held_out, p_train, p_held_out in zip(train_scores, held_out_scores, train_prevalence,
                                                    held_out_prevalence):
        row = {"class": train["class"], "prevalence_train": float(p_train), "prevalence_held_out": float(p_held_out)}
        for key, on_train, on_held_out in (
                ("auroc", train["auroc"], held_out["auroc"]), ("auprc", train["auprc"], held_out["auprc"]),
                ("auprc_over_chance", auprc_over_chance(train["auprc"], p_train),
                 auprc_over_chance(held_out["auprc"], p_held_out))):
            row.update({f"{key}_train": on_train, f"{key}_held_out": on_held_out, f"{key}_gap": on_train - on_held_out})
        classes.append(row)
    return classes


def evaluation_table(results, command_line):
    lines = provenance_lines("predict-bigwig --evaluate", command_line)
    lines += ["#split\tchromosomes\tclass\tauroc\tauprc\tpositives\twindows\tmethod"]
    rows = [(split, "all", scores) for split, scores in results["splits"].items()]
    if results["overfitting"]:
        rows.append(("train", results["overfitting"]["train_chrom"], results["overfitting"]["train"]))
    rows += [(split, "all", scores) for split, scores in results["baselines"].items()]
    for split, chroms, scores in rows:
        lines += [f"{split}\t{chroms}\t{s['class']}\t{s['auroc']:.6f}\t{s['auprc']:.6f}\t{s['positives']}\t{s['windows']}"
                  f"\t{s.get('method', 'model')}" for s in scores]
    if results["overfitting"]:
        o = results["overfitting"]
        lines.append(f"##overfitting_test: mean AUPRC on training chromosome {o['train_chrom']} minus "
                     f"{o['held_out']} = {o['gap']:.4f}; AUROC gap {o['auroc_gap']:.4f}; AUPRC over chance gap "
                     f"{o['auprc_over_chance_gap']:.4f}{' (WARNING: large gap)' if o['warning'] else ''}")
        lines.append("##overfitting_auprc_over_chance=(AUPRC - prevalence) / (1 - prevalence): 0 = chance, 1 = "
                     "perfect; prevalence with train negatives counted 1/keep_negatives times")
        lines.append("\t".join(("##overfitting_by_class", "class") + OVERFITTING_COLUMNS))
        lines += ["\t".join(["##overfitting_by_class", c["class"]] + [f"{c[key]:.6f}" for key in OVERFITTING_COLUMNS])
                  for c in o["classes"]]
    return "\n".join(lines) + "\n"


def evaluation_curves_png(results, table):
    """ROC and PR curves per class and split, as PNG bytes (a legend up to LEGEND_CURVES curves)."""
    figure, (roc_axes, pr_axes) = pyplot().subplots(1, 2, figsize=(11, 4.5))
    for split, (rows, predictions) in results["predictions"].items():
        weights = negative_weights(table, rows)
        labels = table.labels[rows]
        for i, name in enumerate(table.class_names):
            true_positives, false_positives = Ranking(predictions[:, i]).counts(labels[:, i], weights)
            if not has_both_labels(true_positives, false_positives):
                continue
            precision, recall = precision_recall(true_positives, false_positives)
            label = f"{name} ({split})"
            roc_axes.plot(*roc_points(true_positives, false_positives), label=label)
            pr_axes.plot(np.append(0, recall), np.append(1, precision), label=label)
    roc_axes.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc_axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr_axes.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
    if len(roc_axes.lines) - 1 <= LEGEND_CURVES:  # beyond that a legend hides the plot and names nothing legibly
        for axes in (roc_axes, pr_axes):
            axes.legend(fontsize=7)
    figure.tight_layout()
    return figure_bytes(figure)


def evaluation_html(results, info, curves):
    """The evaluation as an HTML page, `curves` (evaluation_curves_png) embedded."""
    from html import escape

    overfit = ""
    if results["overfitting"]:
        o = results["overfitting"]
        by_class = "".join(f"<tr><td>{escape(c['class'])}</td>"
                           + "".join(f"<td>{c[key]:.4f}</td>" for key in OVERFITTING_COLUMNS) + "</tr>"
                           for c in o["classes"])
        overfit = (f"<h2>Overfitting test</h2><p>Training chromosome {escape(o['train_chrom'])} minus the "
                   f"{o['held_out']} chromosomes, mean over the classes: AUROC <b>{o['auroc_gap']:.4f}</b>, AUPRC over "
                   f"chance <b>{o['auprc_over_chance_gap']:.4f}</b>, AUPRC {o['gap']:.4f}"
                   f"{' &mdash; a large gap: the model may have memorised overlapping windows' if o['warning'] else ''}"
                   f". AUPRC over chance is (AUPRC &minus; prevalence) / (1 &minus; prevalence): 0 for a random "
                   f"ranking, 1 for a perfect one; the raw AUPRC grows with the prevalence, which differs between "
                   f"chromosomes.</p><table><tr><th>class</th>"
                   + "".join(f"<th>{escape(key.replace('_', ' '))}</th>" for key in OVERFITTING_COLUMNS)
                   + f"</tr>{by_class}</table>")
    return html_page(f"DeepGMAP evaluation: {info.model}", f"""<h1>DeepGMAP evaluation</h1>
<p>Model {escape(info.model)} (width x{info.width_scale}); train-split negatives weighted by
1/keep_negatives.</p>
{embedded_png(curves, "ROC and precision-recall curves")}
{scores_table(results["splits"])}
<h2>Beside baselines that need no training</h2>
{comparison_html({split: results["splits"][split] for split in results["baselines"]}, results["baselines"])}
{overfit}""")
