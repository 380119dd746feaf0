"""Baselines that need no training, scored wherever a model is: chance, GC content and the best
known motif.

A model's AUROC means little alone: on held-out chromosomes GC content alone can rank CTCF sites
at AUROC ~0.66 and a JASPAR CTCF scan at ~0.75. Reported beside the model:
- chance: AUROC 0.5, AUPRC the share of positive windows (prevalence);
- gc: the G+C fraction of each window's A/C/G/T bases, used as a score as is (where the
  sites are GC-poor its AUROC falls below 0.5; it is not flipped);
- motif:NAME: the best log-odds match (uniform background, both strands) of the one motif of
  a MEME file with the best AUROC for the class on a seeded subset of the training windows,
  then scored on the held-out windows.
"""

import math

import numpy as np

from .errors import InputError
from .genome import one_hot_windows, reverse_complement_one_hot
from .progress import ProgressBar, message, warn

SELECTION_WINDOWS = 2000      # train windows on which each class's motif is chosen (a seeded subset)
PSEUDOCOUNT = 0.01            # added to each base's probability: keeps log-odds finite where a base is never seen
MOTIFS_PER_GROUP = 64         # motifs of similar width scanned in one matrix product
_FLOATS_PER_BATCH = 1 << 23   # bounds the (windows x positions x columns) arrays of one product (32 MB)
_GC_WINDOWS_PER_BATCH = 1024
_UNKNOWN_BASE = -1e6          # weight of a base other than A/C/G/T: no real match can make up for it
NO_MATCH = -1e3               # below any real match (at worst about -4.6 per motif position)
SCORE_DECIMALS = 4            # motif scores are rounded to this many decimals
MOTIF_METHOD = "motif:"       # method name of a motif baseline: motif:NAME


def log_odds_matrices(matrices, pseudocount=PSEUDOCOUNT):
    """log2(p / 0.25) of (width, 4) A,C,G,T probability matrices (as motifs.read_motif_db gives
    them), each position's p smoothed to (p + pseudocount) / (sum + 4 pseudocount), returned
    as float32 (width, 4) matrices in the suite's one-hot order A,G,C,T."""
    from .motifs import MEME_ORDER  # here, not above: motifs imports Keras, and the CLIs import this module

    result = []
    for matrix in matrices:
        matrix = np.asarray(matrix, dtype=np.float64)
        smoothed = (matrix + pseudocount) / (matrix.sum(axis=1, keepdims=True) + 4 * pseudocount)
        # MEME_ORDER maps A,G,C,T to A,C,G,T and, being its own inverse, back.
        result.append(np.log2(smoothed / 0.25)[:, MEME_ORDER].astype(np.float32))
    return result


class MotifScanner:
    """Best match of many motifs at once: for each window, the highest log-odds sum over every
    position where the motif fits and both strands.

    Matches that overlap a base other than A/C/G/T do not count (as in Biopython's and FIMO's
    scans): the one-hot rows get a fifth channel, 1 at such bases, that every motif position
    weighs by _UNKNOWN_BASE; a window with no match free of them scores NO_MATCH.
    Motifs are sorted by width and scanned in groups; a group is one matrix product of the
    sliding (width x 5) views of a batch of windows with the group's forward and
    reverse-complement matrices, zero-padded to the group's widest motif. The windows are
    padded with unknown bases, so narrower motifs reach their last starts and wider ones
    never count a start that runs past the end.
    """

    def __init__(self, log_odds):
        self.widths = np.array([len(matrix) for matrix in log_odds], dtype=np.int64)
        self.groups = []
        order = np.argsort(self.widths, kind="stable")
        for members in np.array_split(order, max(1, math.ceil(len(order) / MOTIFS_PER_GROUP))):
            width = int(self.widths[members].max())
            columns = np.zeros((5, width, 2 * len(members)), dtype=np.float32)
            for column, index in enumerate(members):  # once per motif, when the scanner is built
                matrix = log_odds[index]
                columns[:4, :len(matrix), column] = matrix.T
                columns[:4, :len(matrix), len(members) + column] = reverse_complement_one_hot(matrix).T
                columns[4, :len(matrix), [column, len(members) + column]] = _UNKNOWN_BASE
            self.groups.append((members, width, columns.reshape(5 * width, -1)))

    def __len__(self):
        return len(self.widths)

    def windows_per_batch(self, length):
        """Windows of `length` bp whose scan keeps one group's arrays within _FLOATS_PER_BATCH."""
        per_window = max(length * (5 * width + columns.shape[1]) for _, width, columns in self.groups)
        return max(1, _FLOATS_PER_BATCH // per_window)

    def __call__(self, one_hot):
        """(windows, motifs) best log-odds of one-hot windows (windows, length, 4) in A,G,C,T."""
        n_windows, length, _ = one_hot.shape
        if self.widths.max() > length:
            raise InputError(f"a motif of {self.widths.max()} bp is longer than the {length} bp windows")
        one_hot = one_hot.astype(np.float32, copy=False)
        with_unknown = np.concatenate([one_hot, 1 - one_hot.sum(axis=2, keepdims=True)], axis=2)
        best = np.empty((n_windows, len(self)), dtype=np.float32)
        for members, width, columns in self.groups:
            narrowest = int(self.widths[members].min())
            tail = np.zeros((n_windows, width - narrowest, 5), dtype=np.float32)
            tail[:, :, 4] = 1
            views = np.lib.stride_tricks.sliding_window_view(np.concatenate([with_unknown, tail], axis=1), width,
                                                             axis=1)  # (windows, starts, 5, width)
            starts = views.shape[1]
            group_best = (views.reshape(n_windows * starts, 5 * width) @ columns).reshape(n_windows, starts, -1).max(1)
            best[:, members] = np.maximum(group_best[:, :len(members)], group_best[:, len(members):])
        # Rounded, so that windows with the same best match tie whatever order the matrix product
        # summed in (AUPRC depends on ties).
        return np.round(np.maximum(best, NO_MATCH), SCORE_DECIMALS)


def gc_fraction(one_hot):
    """G+C share of the A/C/G/T bases of each one-hot window (windows, length, 4) in A,G,C,T;
    0.5 for a window without any (all N), which ranks it in the middle."""
    acgt = one_hot.sum(axis=(1, 2), dtype=np.float64)
    gc = one_hot[:, :, 1:3].sum(axis=(1, 2), dtype=np.float64)
    return np.divide(gc, acgt, out=np.full(len(one_hot), 0.5), where=acgt > 0)


def window_scores(genome, table, rows, scanner=None, label="baselines"):
    """GC fraction (len(rows),) and, with a MotifScanner, best motif scores (len(rows), motifs) of
    the windows `rows` of a windows table, read from `genome` in batches (memory is bounded)."""
    length = int(table.ends[rows[0]] - table.starts[rows[0]]) if len(rows) else 0
    batch = scanner.windows_per_batch(length) if scanner is not None else _GC_WINDOWS_PER_BATCH
    gc = np.empty(len(rows))
    motif = np.empty((len(rows), len(scanner)), dtype=np.float32) if scanner is not None else None
    with ProgressBar(len(rows), label, "windows") as bar:
        for lo in range(0, len(rows), batch):
            chosen = rows[lo:lo + batch]
            one_hot = one_hot_windows(genome, table.chroms[chosen], table.starts[chosen], length)
            gc[lo:lo + len(chosen)] = gc_fraction(one_hot)
            if scanner is not None:
                motif[lo:lo + len(chosen)] = scanner(one_hot)
            bar.update(len(chosen))
    return gc, motif


def auroc_columns(truth, scores):
    """AUROC of every column of `scores` (windows, columns) for boolean `truth`, by the
    Mann-Whitney rank sum (ties count half, as in roc_auc_score); NaN without both labels."""
    from scipy.stats import rankdata

    positives = int(truth.sum())
    negatives = len(truth) - positives
    if not positives or not negatives:
        return np.full(scores.shape[1], np.nan)
    ranks = rankdata(scores, axis=0)
    return (ranks[truth].sum(axis=0) - positives * (positives + 1) / 2) / (positives * negatives)


def select_motifs(genome, table, train_rows, names, log_odds, seed=0, limit=SELECTION_WINDOWS):
    """Per class, the index of the motif with the best AUROC on at most `limit` train windows
    (a seeded subset), or None for a class without both labels there."""
    if len(train_rows) > limit:
        train_rows = np.sort(np.random.default_rng(seed).choice(train_rows, limit, replace=False))
    _, scores = window_scores(genome, table, train_rows, MotifScanner(log_odds), "motif selection")
    labels = table.labels[train_rows].astype(bool)
    chosen, aurocs = [], []
    for i, name in enumerate(table.class_names):
        per_motif = auroc_columns(labels[:, i], scores)
        best = None if np.isnan(per_motif).all() else int(np.nanargmax(per_motif))
        chosen.append(best)
        aurocs.append(math.nan if best is None else float(per_motif[best]))
        if best is None:
            warn(f"class {name} has no positive (or no negative) among the train windows: no motif baseline")
    found = [f"{name} {names[index]} (AUROC {auroc:.3f})"
             for name, index, auroc in zip(table.class_names, chosen, aurocs) if index is not None]
    if found:
        message(f"best of {len(names)} motifs on {len(train_rows):,} train windows: {', '.join(found)}")
    return chosen


def chance_scores(labels, class_names):
    """A random ranking: AUROC 0.5 and AUPRC = prevalence (NaN where a class has one label only)."""
    scores = []
    for i, name in enumerate(class_names):
        positives, windows = int(labels[:, i].sum()), len(labels)
        both = 0 < positives < windows
        scores.append({"class": name, "auroc": 0.5 if both else math.nan,
                       "auprc": positives / windows if both else math.nan, "positives": positives, "windows": windows})
    return scores


def baseline_scores(genome, table, held_out, train_rows, known_motifs=None, seed=0):
    """Scores of the baselines per held-out split: {split: [score dict with 'method', 'class',
    'auroc', 'auprc', 'positives', 'windows']}, per class in table order the methods 'gc',
    'motif:NAME' (with `known_motifs`, the (names, matrices) of motifs.read_motif_db; the motif
    chosen for the class on `train_rows`) and 'chance'. `held_out` maps split names to rows of
    `table`; empty splits are left out."""
    from .scoring import score_predictions

    chosen, names, log_odds = [], [], []
    if known_motifs:
        names, matrices = known_motifs
        log_odds = log_odds_matrices(matrices)
        if len(train_rows):
            chosen = select_motifs(genome, table, train_rows, names, log_odds, seed)
        else:
            warn("no train windows to choose a motif on: no motif baseline")
    used = sorted({index for index in chosen if index is not None})
    scanner = MotifScanner([log_odds[index] for index in used]) if used else None
    results = {}
    for split, rows in held_out.items():
        if not len(rows):
            continue
        labels = table.labels[rows]
        gc, motif = window_scores(genome, table, rows, scanner, f"baselines ({split})")
        gc_scores = score_predictions(labels, gc, table.class_names)  # one ranking for every class
        chance = chance_scores(labels, table.class_names)
        scores = []
        for i, name in enumerate(table.class_names):
            scores.append(dict(gc_scores[i], method="gc"))
            index = chosen[i] if chosen else None
            if index is not None:
                (motif_score,) = score_predictions(labels[:, [i]], motif[:, [used.index(index)]], [name])
                scores.append(dict(motif_score, method=MOTIF_METHOD + names[index]))
            scores.append(dict(chance[i], method="chance"))
        results[split] = scores
    return results


def _by_class(scores):
    """{class: {'gc' | 'motif' | 'chance': score}} of a split's baseline scores."""
    by_class = {}
    for score in scores:
        method = "motif" if score["method"].startswith(MOTIF_METHOD) else score["method"]
        by_class.setdefault(score["class"], {})[method] = score
    return by_class


def beside_baselines(model_scores, baseline_split_scores):
    """A model's scores on one split as text, each class's AUROC/AUPRC followed in brackets by
    the GC and motif AUROCs and the chance AUPRC of `baseline_split_scores` (baseline_scores)."""
    baselines = _by_class(baseline_split_scores)
    parts = []
    for score in model_scores:
        found = baselines.get(score["class"], {})
        extra = []
        if "gc" in found:
            extra.append(f"GC AUROC {found['gc']['auroc']:.3f}")
        if "motif" in found:
            motif = found["motif"]
            extra.append(f"motif {motif['method'].removeprefix(MOTIF_METHOD)} AUROC {motif['auroc']:.3f}")
        if "chance" in found:
            extra.append(f"chance AUPRC {found['chance']['auprc']:.3f}")
        parts.append(f"{score['class']} AUROC {score['auroc']:.4f} AUPRC {score['auprc']:.4f}"
                     + (f" ({', '.join(extra)})" if extra else ""))
    return ", ".join(parts)


BASELINES_NOTE = ("GC: the G+C fraction of each window used as a score as is (below 0.5 where the sites are GC-poor). "
                  "Motif: the best log-odds match (both strands) of the known motif with the best AUROC for the class "
                  "on the training chromosomes. Chance: a random ranking, AUROC 0.5 and AUPRC the share of positives.")


def comparison_html(model_scores, baselines):
    """An HTML table: per split and class, the model's AUROC/AUPRC beside GC, motif and chance.
    `model_scores` and `baselines` map split names to score lists (score_predictions, baseline_scores)."""
    from html import escape

    def pair(score):
        return (f"<td>{score['auroc']:.3f}</td><td>{score['auprc']:.3f}</td>" if score
                else "<td>&ndash;</td><td>&ndash;</td>")

    rows = []
    for split, scores in model_scores.items():
        by_class = _by_class(baselines.get(split, []))
        for score in scores:
            found = by_class.get(score["class"], {})
            motif, chance = found.get("motif"), found.get("chance")
            motif_name = escape(motif["method"].removeprefix(MOTIF_METHOD)) if motif else "&ndash;"
            chance_auprc = f"{chance['auprc']:.3f}" if chance else "&ndash;"
            rows.append(f"<tr><td>{escape(split)}</td><td>{escape(score['class'])}</td>{pair(score)}"
                        f"{pair(found.get('gc'))}<td>{motif_name}</td>{pair(motif)}<td>{chance_auprc}</td></tr>")
    return ("<table><tr><th rowspan=2>split</th><th rowspan=2>class</th><th colspan=2>model</th>"
            "<th colspan=2>GC content</th><th colspan=3>best known motif</th><th>chance</th></tr>"
            "<tr><th>AUROC</th><th>AUPRC</th><th>AUROC</th><th>AUPRC</th><th>motif</th><th>AUROC</th><th>AUPRC</th>"
            f"<th>AUPRC</th></tr>{''.join(rows)}</table><p>{escape(BASELINES_NOTE)}</p>")
