"""Tiling a genome into labelled training windows.

Windows of `window` bp start at 0 and every `stride` bp after it; the last one ends at or
before the chromosome end. All work is per chromosome with numpy interval arithmetic:
a window index range is computed per peak, never a loop per window or per base.
"""

import io
import math
import os
import zlib
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .bounds import COUNT, POSITIVE_COUNT, PROBABILITY
from .errors import InputError
from .fileio import open_text, provenance_lines
from .genome import ACGT_BYTES, ONE_HOT_ORDER, gc_mask, non_acgt_mask
from .parallel import in_order
from .progress import ProgressBar
from .text_columns import (LANE, MAX_DIGITS, PAD_BEFORE, TAB, ZERO, decoded, lane_width, name_runs, padded_lines,
                           unix_line_ends, whole_numbers)

RULES = ("summit", "overlap", "any")
SPLITS = ("train", "valid", "test")
NEGATIVE_SAMPLING = ("random", "gc-matched")
GC_BINS = 50  # gc-matched negatives: GC fraction in bins of 2%
_FETCH_CHUNK = 1 << 20
_ROWS_PER_WRITE = 1 << 16


@dataclass
class WindowSettings:
    window: int = 1000
    stride: int = 300
    rule: str = "summit"
    min_window_fraction: float = 0.6
    min_peak_fraction: float = 0.4
    max_n_fraction: float = 0.5
    keep_negatives: float = 0.25
    seed: int = 0
    flank: int = 0          # bp of sequence on each side of the labelled window, written with it (DeepSEA: 400)
    negatives: str = "random"  # how train negatives are sampled: one of NEGATIVE_SAMPLING

    def check(self):
        if self.window <= 0:
            raise InputError(f"--window must be > 0, got {self.window}")
        if self.flank < 0:
            raise InputError(f"--flank must be >= 0, got {self.flank}")
        if self.stride <= 0:
            raise InputError(f"--stride must be > 0, got {self.stride}")
        if self.rule not in RULES:
            raise InputError(f"--rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        if self.negatives not in NEGATIVE_SAMPLING:
            raise InputError(f"--negatives must be one of {', '.join(NEGATIVE_SAMPLING)}, got {self.negatives!r}")
        for name in ("min_window_fraction", "min_peak_fraction", "max_n_fraction", "keep_negatives"):
            PROBABILITY.check(getattr(self, name), f"--{name.replace('_', '-')}")


def check_class_names(names, source):
    """InputError naming `source` unless the class names are distinct, not blank, without tabs or
    line breaks and not starting with '.': a repeated or blank name trains classes
    ['CTCF', 'CTCF'] or writes a hidden track file ('.bw')."""
    for name in names:
        if not name.strip() or name.startswith(".") or any(c in name for c in "\t\n\r"):
            raise InputError(f"{source}: class name {name!r} is blank, starts with '.' or contains a tab or "
                             f"line break")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise InputError(f"{source}: class name(s) {', '.join(duplicated)} used twice: class names must be "
                         f"distinct")


@dataclass
class ChromosomeSplit:
    """Held-out chromosomes; every other chromosome is in the train split."""

    test: list = field(default_factory=list)
    valid: list = field(default_factory=list)

    def check(self, chrom_lengths):
        both = sorted(set(self.test) & set(self.valid))
        if both:
            raise InputError(f"chromosome(s) {', '.join(both)} given as both test and valid")
        unknown = [c for c in self.test + self.valid if c not in chrom_lengths]
        if unknown:
            raise InputError(f"held-out chromosome(s) {', '.join(unknown)} not in the genome "
                             f"(it has {_preview(list(chrom_lengths))})")

    def split_of(self, chrom):
        if chrom in self.test:
            return "test"
        return "valid" if chrom in self.valid else "train"


def _preview(names, limit=5):
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def window_starts(chrom_length, window, stride):
    """Starts of the windows that fit entirely in a chromosome of `chrom_length` bp."""
    if chrom_length < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, chrom_length - window + 1, stride, dtype=np.int64)


# Intervals that touch at most this many windows each (a summit touches window / stride) are marked
# window by window: a pass over every window of the chromosome costs more.
_MARKED_SPAN = 8


def _window_index_ranges(starts, ends, n_windows, window, stride):
    """First and last index of the windows overlapping each interval [start, end) by >= 1 bp."""
    first = np.maximum((starts - window) // stride + 1, 0)
    last = np.minimum((ends - 1) // stride, n_windows - 1)
    return first, last


def windows_touching(starts, ends, n_windows, window, stride):
    """Boolean mask of the windows that overlap at least one interval by >= 1 bp."""
    first, last = _window_index_ranges(starts, ends, n_windows, window, stride)
    spans = last - first + 1
    widest = int(spans.max(initial=0))
    if widest <= _MARKED_SPAN:  # summits, narrow peaks: their few windows each are marked, not summed over
        mask = np.zeros(n_windows, dtype=bool)
        for offset in range(widest):
            mask[first[spans > offset] + offset] = True
        return mask
    valid = first <= last
    # Coverage by a difference array: +1 where a range opens, -1 after it closes.
    opens = np.bincount(first[valid], minlength=n_windows + 1)
    closes = np.bincount(last[valid] + 1, minlength=n_windows + 1)
    return np.cumsum(opens - closes)[:n_windows] > 0


def label_windows_by_summit(summits, n_windows, window, stride):
    """Windows that contain at least one summit position (the paper's rule)."""
    return windows_touching(summits, summits + 1, n_windows, window, stride)


def label_windows_by_overlap(starts, ends, n_windows, window, stride, min_window_fraction, min_peak_fraction):
    """Windows that a peak covers by >= min_window_fraction of the window, or that cover
    >= min_peak_fraction of a peak (bedtools intersect -u -f F -F F2 -e, the original's ChIP-seq rule)."""
    first, last = _window_index_ranges(starts, ends, n_windows, window, stride)
    counts = np.maximum(last - first + 1, 0)
    peak = np.repeat(np.arange(len(starts)), counts)
    # Index of each (peak, window) pair: the peak's first window plus the pair's rank within the peak.
    rank = np.arange(len(peak)) - np.repeat(np.cumsum(counts) - counts, counts)
    index = first[peak] + rank
    window_start = index * stride
    overlap = np.minimum(ends[peak], window_start + window) - np.maximum(starts[peak], window_start)
    enough = (overlap / window >= min_window_fraction) | (overlap / (ends - starts)[peak] >= min_peak_fraction)
    mask = np.zeros(n_windows, dtype=bool)
    mask[index[enough]] = True
    return mask


def count_n_bases(genome, chrom, n_windows, window, stride, executor=None, progress=None):
    """Number of bases other than A, C, G, T (any case) in each window of `chrom`."""
    return count_window_bases(genome, chrom, n_windows, window, stride, executor, progress)[0]


def count_window_bases(genome, chrom, n_windows, window, stride, executor=None, progress=None, gc=False):
    """Per window of `chrom`: the number of bases other than A, C, G, T (any case) and, with
    `gc`, the number of G and C (else None), both from one read of the sequence.

    Bases are counted in blocks of gcd(window, stride) bp, which tile every window exactly.
    The genome is read in chunks (flat memory; in parallel on `executor`'s threads, as
    decompression releases the GIL), and chunks without any such base, most of a genome,
    are skipped after one fast bytes.translate. GC has no such shortcut: every chunk with
    A/C/G/T bases gets one more translate and block sum, about 0.2 s per 100 Mb on one core
    (measured on hg19 chr20: the pass takes a third to a half longer, ~6 s more for hg19).
    """
    block = math.gcd(window, stride)
    covered = ((n_windows - 1) * stride + window) // block * block
    chunk = max(_FETCH_CHUNK // block, 1) * block
    counts = np.zeros(covered // block + 1, dtype=np.int64)
    gc_counts = np.zeros_like(counts) if gc else None

    def count_chunk(chunk_start):
        sequence = genome.fetch(chrom, chunk_start, min(chunk_start + chunk, covered))
        # Index 0 of the counts stays 0: their cumulative sum then starts at 0.
        blocks = slice(chunk_start // block + 1, chunk_start // block + 1 + len(sequence) // block)
        others = sequence.translate(None, ACGT_BYTES)
        if others:
            counts[blocks] = non_acgt_mask(sequence).reshape(-1, block).sum(axis=1)
        if gc and len(others) < len(sequence):
            gc_counts[blocks] = gc_mask(sequence).reshape(-1, block).sum(axis=1)
        return len(sequence)

    for done in (executor.map if executor else map)(count_chunk, range(0, covered, chunk)):
        if progress is not None:
            progress.update(done)
    starts = np.arange(n_windows, dtype=np.int64) * stride

    def per_window(block_counts):
        cumulative = np.cumsum(block_counts)
        return cumulative[(starts + window) // block] - cumulative[starts // block]

    return per_window(counts), (per_window(gc_counts) if gc else None)


def label_chromosome(peak_set, chrom, n_windows, settings):
    """0/1 labels of the windows of one chromosome for one class, by `settings.rule`."""
    intervals = peak_set.by_chrom.get(chrom)
    if intervals is None or n_windows == 0:
        return np.zeros(n_windows, dtype=bool)
    if settings.rule == "summit":
        return label_windows_by_summit(intervals.summits, n_windows, settings.window, settings.stride)
    if settings.rule == "any":
        return windows_touching(intervals.starts, intervals.ends, n_windows, settings.window, settings.stride)
    return label_windows_by_overlap(intervals.starts, intervals.ends, n_windows, settings.window,
                                    settings.stride, settings.min_window_fraction, settings.min_peak_fraction)


def negative_keep_mask(positive, chrom, settings, keep_probability=None):
    """Rows to keep in the train split: all `positive` ones (a positive label in any class), and
    each other row with probability `keep_negatives` (or its own `keep_probability`, one per row),
    drawn from a generator seeded by (seed, chromosome name) so a chromosome's draw does not
    depend on which other chromosomes are processed."""
    rng = np.random.default_rng([settings.seed, zlib.crc32(chrom.encode())])
    draw = rng.random(len(positive))
    probability = settings.keep_negatives if keep_probability is None else keep_probability
    return positive | (draw < probability)


def gc_matched_keep_probability(gc_fraction, positive, negative, keep_negatives):
    """Probability of keeping each all-zero row so that the kept `negative` rows have the GC
    distribution (bins of 1 / GC_BINS) of the `positive` rows, and their expected number is
    keep_negatives x the negatives, as under random sampling (`positive` and `negative` mark
    the rows that passed the filters).

    Returns the probabilities and the number of GC bins that hold positives but fewer negatives
    than their share: those give all their negatives and the other bins make up the shortfall
    in proportion to the positives (water filling). If the bins that hold positives cannot
    supply the total at all (or there is no positive), the rest is drawn evenly from the others.
    """
    bins = np.minimum((gc_fraction * GC_BINS).astype(np.int64), GC_BINS - 1)
    wanted = np.bincount(bins[positive], minlength=GC_BINS) / max(int(positive.sum()), 1)
    available = np.bincount(bins[negative], minlength=GC_BINS).astype(float)
    total = keep_negatives * available.sum()
    matched = wanted > 0
    # Raise a common level until the shares min(available, level x wanted) add up to the total;
    # bins run out at level available / wanted, in that order.
    runs_out_at = available[matched] / wanted[matched]
    order = np.argsort(runs_out_at)
    runs_out_at, capacity, weight = runs_out_at[order], available[matched][order], wanted[matched][order]
    taken_by_empty_bins = np.cumsum(capacity) - capacity
    weight_still_filling = np.cumsum(weight[::-1])[::-1]
    first_open = np.searchsorted(taken_by_empty_bins + runs_out_at * weight_still_filling, total)
    shares = np.zeros(GC_BINS)
    if first_open < len(order):
        level = (total - taken_by_empty_bins[first_open]) / weight_still_filling[first_open]
        shares[matched] = np.minimum(available[matched], level * wanted[matched])
        short = matched & (level * wanted > available)
    else:
        shares[matched] = available[matched]
        rest = available[~matched].sum()
        shares[~matched] = available[~matched] * (total - available[matched].sum()) / max(rest, 1)
        short = matched
    probability = np.divide(shares, available, out=np.zeros(GC_BINS), where=available > 0)
    return probability[bins], int(short.sum())


_POWERS_OF_TEN = 10 ** np.arange(1, 19, dtype=np.int64)


def _digit_counts(values):
    return np.searchsorted(_POWERS_OF_TEN, values, side="right") + 1


def format_rows(chrom, split, starts, window, labels):
    """The TSV rows `chrom start end split label...` of one chromosome, as bytes.

    Rows are built as a byte matrix, one column per character: starts and ends are sorted,
    so rows with the same number of digits are contiguous and share one fixed layout; each
    such group (a handful per chromosome) is filled digit by digit, never row by row.
    """
    n_rows, n_classes = labels.shape
    if n_rows == 0:
        return b""
    ends = starts + window
    prefix = np.frombuffer(f"{chrom}\t".encode(), dtype=np.uint8)
    middle = np.frombuffer(f"\t{split}".encode(), dtype=np.uint8)
    start_digits, end_digits = _digit_counts(starts), _digit_counts(ends)
    layout = start_digits * 32 + end_digits
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(layout)) + 1, [n_rows]])
    pieces = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        widths = (len(prefix), int(start_digits[lo]), 1, int(end_digits[lo]), len(middle), 2 * n_classes + 1)
        offsets = np.cumsum((0,) + widths)
        rows = np.empty((hi - lo, offsets[-1]), dtype=np.uint8)
        rows[:, :offsets[1]] = prefix
        for column, values in ((1, starts[lo:hi]), (3, ends[lo:hi])):
            for place in range(widths[column]):
                rows[:, offsets[column] + place] = values // 10 ** (widths[column] - 1 - place) % 10 + ord("0")
        rows[:, offsets[2]] = ord("\t")
        rows[:, offsets[4]:offsets[5]] = middle
        # Each label as the two bytes tab, digit: one little-endian uint16 per label.
        pairs = (labels[lo:hi].astype("<u2") + ord("0")) << 8 | ord("\t")
        rows[:, offsets[5]:-1] = pairs.view(np.uint8)
        rows[:, -1] = ord("\n")
        pieces.append(rows.tobytes())
    return b"".join(pieces)


@dataclass
class WindowSummary:
    class_names: list
    windows: dict = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    positives: dict = field(default_factory=dict)
    dropped_n: int = 0
    dropped_blacklist: int = 0
    dropped_negatives: int = 0
    # --negatives gc-matched only: mean GC fraction of train windows as [sum, count] per group,
    # chromosomes with GC bins short of negatives (and how many bins), chromosomes without positives.
    gc_totals: dict = field(default_factory=dict)
    gc_short_chroms: list = field(default_factory=list)
    gc_short_bins: int = 0
    gc_unmatched_chroms: list = field(default_factory=list)

    def add(self, split, labels):
        self.windows[split] += len(labels)
        per_class = self.positives.setdefault(split, np.zeros(len(self.class_names), dtype=np.int64))
        per_class += labels.sum(axis=0)

    def add_gc(self, group, gc_fraction):
        totals = self.gc_totals.setdefault(group, [0.0, 0])
        totals[0] += float(gc_fraction.sum())
        totals[1] += len(gc_fraction)

    def lines(self):
        width = max(len(name) for name in self.class_names + ["class"])
        lines = [f"{'':<{width}}  " + "".join(f"{split:>10}" for split in SPLITS),
                 f"{'windows':<{width}}  " + "".join(f"{self.windows[s]:>10,}" for s in SPLITS)]
        for i, name in enumerate(self.class_names):
            counts = [self.positives[s][i] if s in self.positives else 0 for s in SPLITS]
            lines.append(f"{name:<{width}}  " + "".join(f"{c:>10,}" for c in counts))
        lines.append(f"dropped: {self.dropped_n:,} with too many N, {self.dropped_blacklist:,} "
                     f"touching the blacklist, {self.dropped_negatives:,} train negatives not sampled")
        if self.gc_totals:
            means = ", ".join(f"{group} {100 * total / count:.1f}%" if count else f"{group} none"
                              for group, (total, count) in self.gc_totals.items())
            lines.append(f"gc-matched negatives: mean GC of train {means}")
        if self.gc_short_bins:
            lines.append(f"gc-matched negatives: {self.gc_short_bins} GC bin(s) on {len(self.gc_short_chroms)} "
                         f"chromosome(s) ({_preview(self.gc_short_chroms)}) had fewer negatives than the positives' "
                         "share: all taken, the shortfall taken from the other bins")
        if self.gc_unmatched_chroms:
            lines.append(f"gc-matched negatives: no train positive on {len(self.gc_unmatched_chroms)} chromosome(s) "
                         f"({_preview(self.gc_unmatched_chroms)}): their negatives drawn at random")
        return lines


def table_provenance_lines(command_line, genome, class_names, peak_sets, settings, split, blacklist_path):
    """`##key=value` lines that record how a windows table was made."""
    classes = ",".join(f"{name}:{peaks.path}" for name, peaks in zip(class_names, peak_sets))
    return provenance_lines(
        "make-training-windows", command_line, genome=genome.path, chromosomes=len(genome.lengths),
        classes=classes, window=settings.window, stride=settings.stride, flank=settings.flank, rule=settings.rule,
        min_window_fraction=settings.min_window_fraction, min_peak_fraction=settings.min_peak_fraction,
        max_n_fraction=settings.max_n_fraction, blacklist=blacklist_path or "none",
        test_chroms=",".join(split.test) or "none", valid_chroms=",".join(split.valid) or "none",
        keep_negatives=settings.keep_negatives, negatives=settings.negatives, seed=settings.seed,
        one_hot_order=ONE_HOT_ORDER)


def _gc_matched_sample(any_positive, chrom, settings, eligible, n_bases, gc_bases, summary):
    """negative_keep_mask with GC-matched probabilities among the `eligible` (filtered) rows;
    the GC outcome goes to `summary`."""
    # GC among the A/C/G/T bases; a window of N only (kept at --max-n-fraction 1) counts as 0.
    gc_fraction = gc_bases / np.maximum(settings.window - n_bases, 1)
    positive = eligible & any_positive
    negative = eligible & ~any_positive
    probability, short_bins = gc_matched_keep_probability(gc_fraction, positive, negative, settings.keep_negatives)
    sampled = negative_keep_mask(any_positive, chrom, settings, probability)
    if short_bins:
        summary.gc_short_chroms.append(chrom)
        summary.gc_short_bins += short_bins
    if negative.any() and not positive.any():
        summary.gc_unmatched_chroms.append(chrom)
    for group, rows in (("positives", positive), ("kept negatives", negative & sampled), ("all negatives", negative)):
        summary.add_gc(group, gc_fraction[rows])
    return sampled


def _window_rows(genome, chrom, peak_sets, settings, split, blacklist, summary, executor, progress):
    """Starts, labels and split of the windows of one chromosome kept after every filter."""
    window, stride = settings.window, settings.stride
    starts = window_starts(genome.lengths[chrom], window, stride)
    chrom_split = split.split_of(chrom)
    match_gc = settings.negatives == "gc-matched" and chrom_split == "train" and len(starts) > 0
    keep = np.ones(len(starts), dtype=bool)
    read = 0
    # At --max-n-fraction 1 no window can fail the N filter: the sequence is then read only to match GC.
    if len(starts) and (settings.max_n_fraction < 1 or match_gc):
        n_bases, gc_bases = count_window_bases(genome, chrom, len(starts), window, stride, executor, progress,
                                               gc=match_gc)
        keep = n_bases <= settings.max_n_fraction * window
        read = int(starts[-1]) + window
        summary.dropped_n += int(len(starts) - keep.sum())
    progress.update(genome.lengths[chrom] - read)
    if blacklist is not None and chrom in blacklist.by_chrom:
        listed = blacklist.by_chrom[chrom]
        touching = windows_touching(listed.starts, listed.ends, len(starts), window, stride)
        summary.dropped_blacklist += int((keep & touching).sum())
        keep &= ~touching
    if settings.flank:  # the flanks must lie inside the chromosome too
        keep &= (starts >= settings.flank) & (starts + window + settings.flank <= genome.lengths[chrom])
    by_class = np.empty((len(peak_sets), len(starts)), dtype=bool)
    for row, peak_set in zip(by_class, peak_sets):
        row[:] = label_chromosome(peak_set, chrom, len(starts), settings)
    if chrom_split == "train":
        any_positive = by_class.any(axis=0)
        if match_gc:
            sampled = _gc_matched_sample(any_positive, chrom, settings, keep, n_bases, gc_bases, summary)
        else:
            sampled = negative_keep_mask(any_positive, chrom, settings)
        summary.dropped_negatives += int((keep & ~sampled).sum())
        keep &= sampled
    return starts[keep], _transposed(by_class[:, keep]), chrom_split


_TRANSPOSE_BLOCK = 4096  # columns (windows) of the classes' labels transposed at once


def _transposed(matrix):
    """A C-ordered copy of matrix.T, made a block of columns at a time: one pass writing a column
    across every row's cache line (np.column_stack of the classes' labels) took 27 of 67 s at 400
    classes on the whole genome."""
    result = np.empty(matrix.shape[::-1], dtype=matrix.dtype)
    for first in range(0, len(result), _TRANSPOSE_BLOCK):
        result[first:first + _TRANSPOSE_BLOCK] = matrix[:, first:first + _TRANSPOSE_BLOCK].T
    return result


def write_training_windows(stream, genome, class_names, peak_sets, settings, split,
                           blacklist=None, header_lines=(), threads=1):
    """Tile `genome`, label windows per class and write the table to binary `stream`.

    Chromosomes are written in lexicographic order (as `sort -k1,1 -k2,2n`), rows by start;
    `threads` read the sequence in parallel. Returns a WindowSummary.
    """
    settings.check()
    split.check(genome.lengths)
    summary = WindowSummary(list(class_names))
    for line in header_lines:
        stream.write(f"{line}\n".encode())
    stream.write(("#chrom\tstart\tend\tsplit\t" + "\t".join(class_names) + "\n").encode())
    with ProgressBar(sum(genome.lengths.values()), "windows", "bp") as progress, \
            ThreadPoolExecutor(max(threads, 1)) as executor:
        for chrom in sorted(genome.lengths):
            starts, labels, chrom_split = _window_rows(genome, chrom, peak_sets, settings, split, blacklist,
                                                       summary, executor, progress)
            summary.add(chrom_split, labels)
            for lo in range(0, len(starts), _ROWS_PER_WRITE):  # bounds the text held in memory
                hi = lo + _ROWS_PER_WRITE
                stream.write(format_rows(chrom, chrom_split, starts[lo:hi] - settings.flank,
                                         settings.window + 2 * settings.flank, labels[lo:hi]))
    return summary


@dataclass
class WindowsTable:
    """A windows table as written by write_training_windows: chroms and splits as numpy arrays of
    str, starts and ends int64, labels uint8 (rows x classes)."""

    metadata: dict
    class_names: list
    chroms: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    splits: np.ndarray
    labels: np.ndarray

    @property
    def input_length(self):
        """bp of sequence per row: the labelled window and its flanks."""
        return int(self.ends[0] - self.starts[0]) if len(self.starts) else self.window + 2 * self.flank

    @property
    def flank(self):
        return int(self.metadata.get("flank", WindowSettings.flank))

    @property
    def window(self):
        """bp the labels were counted on."""
        if "window" in self.metadata or not len(self.starts):
            return int(self.metadata.get("window", WindowSettings.window))
        return int(self.ends[0] - self.starts[0]) - 2 * self.flank

    @property
    def stride(self):
        return int(self.metadata.get("stride", WindowSettings.stride))

    @property
    def one_hot_order(self):
        return self.metadata.get("one_hot_order", ONE_HOT_ORDER)

    @property
    def split(self):
        """Split name -> the sorted chromosomes of its rows."""
        return {name: sorted(set(self.chroms[self.splits == name].tolist())) for name in SPLITS}


# Bytes of table text parsed at a time. Small enough for the allocator to reuse the temporaries of one
# block for the next, not map fresh zeroed pages: 1.9 M rows/s at 100 classes against 1.2 M with 32 MB.
_BODY_BLOCK = 1 << 22
_MAX_FIRST_COLUMNS = 4096  # bytes of chrom, start, end and split with their tabs: bounds a gather
_PAD_AFTER = _MAX_FIRST_COLUMNS + 2 * LANE  # zeros after a block: no gather runs off it
# Each split as the little-endian number of its bytes with the tab before it, and its length.
_SPLIT_CELLS = [(int.from_bytes(f"\t{split}".encode(), "little"), len(split)) for split in SPLITS]


LABEL_BLOCK = 1 << 16  # table rows whose labels are copied at once


def label_sums(table, rows, weights=None, block=LABEL_BLOCK):
    """Per class, the positives among `rows` of a windows table (or their `weights` summed, one
    per row), `block` rows at a time: the labels of every train row copied at once would take as
    much memory as the table's labels."""
    sums = np.zeros(table.labels.shape[1], dtype=np.int64 if weights is None else np.float64)
    for first in range(0, len(rows), block):
        labels = table.labels[rows[first:first + block]]
        sums += labels.sum(axis=0, dtype=np.int64) if weights is None else weights[first:first + block] @ labels
    return sums


def check_table_on_genome(table, genome):
    """Every window on a chromosome of the genome and inside it (checked before any work, not
    when a batch reaches the window)."""
    names, inverse = np.unique(table.chroms, return_inverse=True)
    missing = sorted(set(names) - set(genome.lengths))
    if missing:
        raise InputError(f"the windows table names chromosome(s) the genome lacks: {', '.join(missing[:5])} "
                         f"(is it the genome the windows were made on?)")
    past_end = table.ends > np.array([genome.lengths[name] for name in names], dtype=np.int64)[inverse]
    if past_end.any():
        row = int(np.argmax(past_end))
        raise InputError(f"the windows table has {int(past_end.sum()):,} window(s) past their chromosome's end in "
                         f"the genome, e.g. {table.chroms[row]}:{table.starts[row]}-{table.ends[row]} "
                         f"({table.chroms[row]} is {genome.lengths[table.chroms[row]]:,} bp): is it the genome the "
                         f"windows were made on?")


def read_windows_table(path, threads=1):
    """Read a windows table (plain or gzip) back: provenance, class names, columns. Cells are
    checked as make-training-windows writes them (InputError naming the file and the first bad line).

    The body is parsed as bytes with numpy, a block of lines at a time (`threads` blocks at once),
    never a Python object per row: each line is found by its newline, its labels are the bytes at
    fixed places before it, its numbers are summed from their digits, and chromosome names are
    decoded once per name and block.
    """
    with open_text(path, "windows table") as handle:
        stream = handle.buffer  # plain or gzip bytes; a truncated gzip raises InputError on read()
        metadata, header, header_lines, body_start = _read_header(stream, path)
        check_class_names(header[4:], path)
        _check_header_facts(metadata, header, path)
        plain = isinstance(stream, io.BufferedReader) and os.path.isfile(path)
        body = _TableBody(path, len(header) - 4, header_lines,
                          os.fstat(stream.fileno()).st_size - stream.tell() + len(body_start) if plain else None)
        for block in in_order(body.parse, _body_blocks(stream, body_start), threads):
            body.add(block)
    table = WindowsTable(metadata, header[4:], *body.joined())
    if "window" in metadata and len(table.starts) and table.input_length != table.window + 2 * table.flank:
        raise InputError(f"{path}: its rows are {table.input_length} bp, the header's ##window={table.window} and "
                         f"##flank={table.flank} make {table.window + 2 * table.flank}: was the header edited?")
    return table


# The settings a table's header records that its readers use or report, with the values they may take.
_HEADER_RANGES = {"window": POSITIVE_COUNT, "stride": POSITIVE_COUNT, "flank": COUNT,
                  **dict.fromkeys(("min_window_fraction", "min_peak_fraction", "max_n_fraction", "keep_negatives"),
                                  PROBABILITY)}
_HEADER_CHOICES = {"rule": RULES, "negatives": NEGATIVE_SAMPLING}


def _header_fact_problem(key, text):
    """Why a header's `##key=text` cannot be right ('must be ...'), or None."""
    if key in _HEADER_CHOICES:
        return None if text in _HEADER_CHOICES[key] else f"must be one of {', '.join(_HEADER_CHOICES[key])}"
    bounds = _HEADER_RANGES[key]
    try:
        value = int(text) if bounds.integer else float(text)
    except ValueError:
        return f"is not a {'whole ' if bounds.integer else ''}number"
    return bounds.problem(value)


def _check_header_facts(metadata, header, path):
    """The header checked when the table is read, before any work: a hand-edited ##stride=0 or
    ##flank=abc trained to the end and then failed to save the model; a table without class
    columns has nothing to train on."""
    for key, text in metadata.items():
        problem = _header_fact_problem(key, text) if key in _HEADER_RANGES or key in _HEADER_CHOICES else None
        if problem:
            raise InputError(f"{path}: header line ##{key}={text}: the {key} {problem}")
    if len(header) == 4:
        raise InputError(f"{path}: no class columns (the header has only chrom, start, end and split): "
                         f"make the table with make-training-windows --peaks")


def _read_header(stream, path):
    """Provenance (##key=value lines), the column names, the number of header lines and the
    bytes read after them. Read with read(), the one read of a gzip stream that names the file
    when it is cut short (readline() raises a bare EOFError)."""
    metadata, header, header_lines, text, line_start = {}, None, 0, b"", 0
    while True:
        line_end = text.find(b"\n", line_start)
        if line_end < 0:
            more = stream.read(1 << 16)
            text += more
            if more:
                continue
            if line_start == len(text):
                break
            line_end = len(text)  # the last line, without its newline
        header_lines += 1
        line = text[line_start:line_end].decode("utf-8", "replace").removesuffix("\r")
        line_start = line_end + 1
        if not line.startswith("##"):
            header = line[1:].split("\t") if line.startswith("#") else None
            break
        key, _, value = line[2:].partition("=")
        metadata[key] = value
    if header is None or header[:4] != ["chrom", "start", "end", "split"]:
        raise InputError(f"{path}: not a windows table (no '#chrom start end split ...' header)")
    if metadata.get("one_hot_order", ONE_HOT_ORDER) != ONE_HOT_ORDER:
        raise InputError(f"{path}: made for one-hot order {metadata['one_hot_order']}, this suite uses "
                         f"{ONE_HOT_ORDER}")
    return metadata, header, header_lines, text[line_start:]


def _body_blocks(stream, rest):
    """The body's text in blocks of whole lines, from `rest` (already read) on, a missing final
    newline added. A block is (start, read, end), the text start + read[:end]: joined by the
    thread that parses it (padded_lines copies it anyway), not by the one that reads."""
    while read := stream.read(_BODY_BLOCK):
        end = read.rfind(b"\n") + 1
        if end:
            yield rest, read, end
            rest = read[end:]
        else:
            rest += read
    if rest:
        final = b"" if rest.endswith(b"\n") else b"\n"
        yield rest, final, len(final)


def _block_pieces(start, read, end):
    """A block's text as pieces for padded_lines; joined here if it has a CR (CR LF and CR end
    lines as in text mode, and a CR LF may straddle the pieces)."""
    if b"\r" in start or read.find(b"\r", 0, end) >= 0:
        return [unix_line_ends(start + read[:end])]
    return [start, memoryview(read)[:end]]


class _TableBody:
    """The columns of a table body, parsed block by block; labels packed as uint8."""

    def __init__(self, path, n_classes, header_lines, body_bytes=None):
        """`body_bytes`: the body's size, if known (not for gzip), to allocate the columns once."""
        self.path, self.n_classes, self.header_lines, self.body_bytes = path, n_classes, header_lines, body_bytes
        self.rows = 0
        self.first_width = None  # of the body's first row
        self.chrom_codes = {}  # name: code, in order of appearance
        self.columns = {"chrom_codes": _Rows((), np.int32), "starts": _Rows((), np.int64), "ends": _Rows((), np.int64),
                        "split_codes": _Rows((), np.int8), "labels": _Rows((n_classes,), np.uint8)}
        # The labels are checked a lane at a time: each (tab, digit) pair as "\t0" or "\t1".
        lane_bytes = math.gcd(2 * n_classes, LANE)
        self.label_lane = np.dtype(f"<u{lane_bytes}")
        self.digit_bit, self.tab_and_one = (np.frombuffer(pair * (lane_bytes // 2), self.label_lane)[0]
                                            for pair in (b"\0\1", b"\t1"))

    def parse(self, block):
        """A _Block of a block of whole lines (_body_blocks), parsed and checked on its own: blocks
        can be parsed in threads and added in order."""
        padded, line_starts, line_ends = padded_lines(_block_pieces(*block), _PAD_AFTER)
        labels_start = line_ends - 2 * self.n_classes  # a line's labels, each as a tab and a digit
        first_length = labels_start - line_starts  # its chrom, start, end and split with their tabs
        ok = (first_length >= 0) & (first_length <= _MAX_FIRST_COLUMNS)
        tab1, tab2, tab3, three_tabs = _first_tabs(padded, line_starts, first_length)
        starts, good_starts = whole_numbers(padded, line_starts + tab2, tab2 - tab1 - 1)
        ends, good_ends = whole_numbers(padded, line_starts + tab3, tab3 - tab2 - 1)
        split_codes, split_lengths = _split_codes(padded, labels_start)
        pairs = sliding_window_view(padded, 2 * self.n_classes)[np.maximum(labels_start, 0)]
        wrong_pairs = ((pairs.view(self.label_lane) | self.digit_bit) != self.tab_and_one).any(axis=1)
        ok &= (three_tabs & (tab3 + 1 + split_lengths == first_length) & good_starts & good_ends
               & (split_codes >= 0) & ~wrong_pairs & (ends > starts))
        return _Block(padded, line_starts, line_ends, ok, name_runs(padded, line_starts, tab1), starts, ends,
                      split_codes, pairs[:, 1::2] - np.uint8(ZERO))

    def add(self, block):
        """Append a parsed block, checked against the body so far (its first row's width)."""
        if self.first_width is None:
            self.first_width = int(block.ends[0] - block.starts[0])
            if self.body_bytes:  # room for the rows the body holds at the first block's bytes per row
                text_bytes = int(block.line_ends[-1]) + 1 - PAD_BEFORE
                for rows in self.columns.values():
                    rows.reserve(len(block.line_starts) * self.body_bytes * 102 // (100 * text_bytes))
        ok = block.ok & (block.ends - block.starts == self.first_width)
        if not ok.all():
            self._refuse(block, int(np.argmin(ok)))
        for name, rows in (("chrom_codes", self._chrom_codes(*block.chrom_runs)), ("starts", block.starts),
                           ("ends", block.ends), ("split_codes", block.split_codes), ("labels", block.labels)):
            self.columns[name].append(rows)
        self.rows += len(block.line_starts)

    def _refuse(self, block, row):
        line = block.padded[block.line_starts[row]:block.line_ends[row]].tobytes()
        first_width = None if self.rows + row == 0 else self.first_width
        raise InputError(f"{self.path}:{self.header_lines + self.rows + row + 1}: "
                         f"{_line_problem(line, self.n_classes + 4, first_width)}")

    def _chrom_codes(self, names, run_names, run_lengths):
        """Each row's chromosome code (name_runs); names are decoded once per name and block."""
        codes = np.array([self.chrom_codes.setdefault(decoded(name), len(self.chrom_codes)) for name in names],
                         dtype=np.int32)
        return np.repeat(codes[run_names], run_lengths)

    def joined(self):
        """chroms, starts, ends, splits and labels of the whole body."""
        chroms = np.array(list(self.chrom_codes), dtype=str)[self.columns["chrom_codes"].joined()]
        splits = np.array(SPLITS)[self.columns["split_codes"].joined()]
        return chroms, self.columns["starts"].joined(), self.columns["ends"].joined(), splits, \
            self.columns["labels"].joined()


_Block = namedtuple("_Block", "padded line_starts line_ends ok chrom_runs starts ends split_codes labels")


class _Rows:
    """A column appended block by block into one array that grows in place: numpy's resize
    reallocates, which for arrays of this size remaps their pages rather than copying them, so
    each block is copied once and the column is never held twice (gathering blocks and joining
    them at the end took 2.7 of 7 s of a 100-class genome's read)."""

    def __init__(self, row_shape, dtype):
        self.array, self.rows = np.empty((0, *row_shape), dtype=dtype), 0

    def reserve(self, rows):
        """Room for `rows` rows before the first append, allocated and not written (resize writes
        zeros: pages touched twice)."""
        if self.rows == 0:
            self.array = np.empty((rows, *self.array.shape[1:]), dtype=self.array.dtype)

    def append(self, rows):
        end = self.rows + len(rows)
        if end > len(self.array):
            self.array.resize((max(end, len(self.array) * 3 // 2), *self.array.shape[1:]), refcheck=False)
        self.array[self.rows:end] = rows
        self.rows = end

    def joined(self):
        self.array.resize((self.rows, *self.array.shape[1:]), refcheck=False)
        return self.array


def _first_tabs(padded, line_starts, first_length):
    """Per line, the places of the first three tabs in its first `first_length` bytes, and
    whether there are exactly three."""
    width = lane_width(int(np.clip(first_length, 0, _MAX_FIRST_COLUMNS).max()))
    tab_lines, tab_places = np.nonzero(sliding_window_view(padded, width)[line_starts] == TAB)
    in_first = tab_places < first_length[tab_lines]
    counts = np.bincount(tab_lines[in_first], minlength=len(line_starts))
    tab_places = np.append(tab_places[in_first], 0)  # lines with fewer tabs read this (they are refused)
    first_tab = np.cumsum(counts) - counts
    return (*(tab_places[np.minimum(first_tab + k, len(tab_places) - 1)] for k in range(3)), counts == 3)


def _split_codes(padded, labels_start):
    """Per line, the index in SPLITS of the cell before its labels (-1: none) and its length."""
    last_bytes = sliding_window_view(padded, LANE)[np.maximum(labels_start - LANE, 0)].view("<u8").ravel()
    codes = np.full(len(labels_start), -1, dtype=np.int8)
    lengths = np.zeros(len(labels_start), dtype=np.int64)
    for code, (cell, length) in enumerate(_SPLIT_CELLS):
        is_split = last_bytes >> np.uint64(8 * (LANE - 1 - length)) == cell
        codes[is_split], lengths[is_split] = code, length
    return codes, lengths


def _line_problem(line, n_columns, first_width):
    """Why a line (bytes) of a table body is refused: the first failing check, in the order they
    are made. `first_width` is None for the first line of the body."""
    cells = line.split(b"\t")
    if len(cells) != n_columns:
        return f"{len(cells)} columns, the header has {n_columns}"
    for cell, what in ((cells[1], "start"), (cells[2], "end")):
        shown = cell.decode("utf-8", "replace")
        if not cell.isdigit():
            return f"{what} {shown!r} is not a whole number >= 0"
        if len(cell) > MAX_DIGITS:
            return f"{what} {shown!r} has more than {MAX_DIGITS} digits"
    if any(cell not in (b"0", b"1") for cell in cells[4:]):
        return "a label other than 0 or 1"
    if cells[3].decode("utf-8", "replace") not in SPLITS:
        return f"a split other than {', '.join(SPLITS)}"
    start, end = int(cells[1]), int(cells[2])
    if end <= start:
        return "end <= start"
    if first_width is not None and end - start != first_width:
        return "a window width unlike the first row's"
    return f"chrom, start, end and split take more than {_MAX_FIRST_COLUMNS} bytes"
