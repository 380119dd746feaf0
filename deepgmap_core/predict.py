"""Genome-wide prediction as tracks: windows scored by a trained model, aggregated into bins.

Windows of the model's size start every `stride` bp (as make-training-windows tiles them);
windows with more than `max_n_fraction` N are not scored. Each stride-sized bin of a
chromosome gets the mean prediction of the scored windows that overlap it, so the track is
a valid, non-overlapping bedGraph/bigWig whose value is "the model's mean probability for
the windows around this bin"; bins no scored window overlaps have no value. Predictions are
probabilities at the genome's class balance when the model file records the correction for
its training windows' negative subsampling (deepgmap_core.calibration).
"""

from dataclasses import dataclass

import keras
import numpy as np

from .backend import accelerator
from .batching import prefetched
from .calibration import genome_probabilities
from .errors import InputError
from .genome import ONE_HOT_ORDER, one_hot_windows, reverse_complement_one_hot
from .progress import ProgressBar, message
from .shared_trunk import head_predictions, trunk_features, trunk_plan
from .track_merge import BigWigWriter
from .windows import count_n_bases, window_starts, windows_touching


TRUNK_MODES = ("auto", "shared", "per-window")


@dataclass
class PredictSettings:
    stride: int = 300
    batch_size: int = 256
    rc_average: bool = False
    max_n_fraction: float = 0.5
    threads: int = 1
    trunk: str = "auto"             # shared | per-window | auto: shared on a CPU, per window on a GPU

    def check(self):
        if self.stride <= 0:
            raise InputError(f"--stride must be > 0, got {self.stride}")
        if self.batch_size <= 0:
            raise InputError(f"--batch-size must be > 0, got {self.batch_size}")
        if self.trunk not in TRUNK_MODES:
            raise InputError(f"--trunk must be one of {', '.join(TRUNK_MODES)}, got {self.trunk!r}")


def check_model_for_genome(metadata, genome, chroms):
    """The model's one-hot order and the chromosomes asked for, against the genome."""
    if metadata.get("one_hot_order") != ONE_HOT_ORDER:
        raise InputError(f"the model was trained with one-hot order {metadata.get('one_hot_order')!r}, "
                         f"this suite uses {ONE_HOT_ORDER}")
    missing = [c for c in chroms if c not in genome.lengths]
    if missing:
        raise InputError(f"chromosome(s) {', '.join(missing[:5])} not in the genome {genome.path}")


class _WindowBatches:
    def __init__(self, genome, chrom, starts, window, batch_size):
        self.genome, self.chrom, self.starts, self.window, self.batch_size = genome, chrom, starts, window, batch_size

    def __len__(self):
        return -(-len(self.starts) // self.batch_size)

    def __getitem__(self, index):
        starts = self.starts[index * self.batch_size:(index + 1) * self.batch_size]
        return one_hot_windows(self.genome, [self.chrom] * len(starts), starts, self.window)


class _Stretches:
    """Stretches of sequence, each holding up to `per_stretch` consecutive windows (split at gaps
    wider than a window), as (one-hot (1, length, 4), window offsets in the stretch)."""

    def __init__(self, genome, chrom, starts, window, per_stretch):
        self.genome, self.chrom, self.starts, self.window = genome, chrom, starts, window
        cuts = set(range(0, len(starts), per_stretch)) | set((np.flatnonzero(np.diff(starts) > window) + 1).tolist())
        self.bounds = sorted(cuts) + [len(starts)]

    def __len__(self):
        return len(self.bounds) - 1

    def __getitem__(self, index):
        starts = self.starts[self.bounds[index]:self.bounds[index + 1]]
        length = int(starts[-1] - starts[0]) + self.window
        return one_hot_windows(self.genome, [self.chrom], starts[:1], length), starts - starts[0]


def _shared_predictions(plan, x, offsets, window, rc_average):
    y = head_predictions(plan, trunk_features(plan, x, offsets))
    if rc_average:
        rc = np.ascontiguousarray(reverse_complement_one_hot(x))
        y = (y + head_predictions(plan, trunk_features(plan, rc, x.shape[1] - offsets - window))) / 2
    return y


def predict_batch(model, x, rc_average=False):
    """Predictions (n, classes) of a one-hot batch x (n, window, 4); with rc_average, the mean of
    each window's and its reverse complement's."""
    y = keras.ops.convert_to_numpy(model.predict_on_batch(x))
    if rc_average:
        rc = np.ascontiguousarray(reverse_complement_one_hot(x))
        y = (y + keras.ops.convert_to_numpy(model.predict_on_batch(rc))) / 2
    return y


def predict_starts(model, genome, chrom, starts, window, settings, progress=None, plan=None):
    """Predictions (len(starts), classes) of the windows [start, start + window) of `chrom`;
    with rc_average, the mean of each window's and its reverse complement's predictions.
    With a shared-trunk `plan`, the convolutions are computed once per stretch of sequence."""
    outputs = []
    if plan is not None:
        stretches = _Stretches(genome, chrom, starts, window, settings.batch_size)
        for x, offsets in prefetched(stretches, settings.threads):
            outputs.append(_shared_predictions(plan, x, offsets, window, settings.rc_average))
            if progress is not None:
                progress.update(len(offsets))
    else:
        batches = _WindowBatches(genome, chrom, starts, window, settings.batch_size)
        for x in prefetched(batches, settings.threads):
            outputs.append(predict_batch(model, x, settings.rc_average))
            if progress is not None:
                progress.update(len(x))
    n_classes = model.output_shape[-1]
    return np.concatenate(outputs) if outputs else np.zeros((0, n_classes), dtype=np.float32)


def scored_windows(genome, chrom, window, settings, regions=None):
    """Starts of the windows of `chrom` that are scored: few enough N, and overlapping
    `regions` ((starts, ends) of this chromosome) when given."""
    starts = window_starts(genome.lengths[chrom], window, settings.stride)
    keep = np.ones(len(starts), dtype=bool)
    if regions is not None:
        keep &= windows_touching(regions[0], regions[1], len(starts), window, settings.stride)
    if len(starts) and settings.max_n_fraction < 1:
        keep &= count_n_bases(genome, chrom, len(starts), window, settings.stride) <= settings.max_n_fraction * window
    return starts[keep]


def bin_means(starts, predictions, chrom_length, window, stride, class_block=16):
    """(bin starts, bin ends, values (bins, classes)) of the stride-sized bins that scored windows
    overlap: each value is the mean over the windows overlapping the bin. Vectorised with
    cumulative sums over the window grid, `class_block` classes at a time (the float64 sums of
    every class of a long chromosome at once would outweigh the predictions many times)."""
    n_bins = -(-chrom_length // stride)
    index = starts // stride
    counts = np.zeros(n_bins + 1, dtype=np.int64)
    counts[index + 1] = 1
    counts = np.cumsum(counts)
    bins = np.arange(n_bins)
    # Window k (start k*stride) overlaps bin j when j - span < k <= j.
    span = -(-window // stride)
    lo = np.maximum(bins - span + 1, 0)
    covering = counts[bins + 1] - counts[lo]
    keep = covering > 0
    values = np.empty((int(keep.sum()), predictions.shape[1]), dtype=np.float32)
    for first in range(0, predictions.shape[1], class_block):
        sums = np.zeros((n_bins + 1, min(class_block, predictions.shape[1] - first)), dtype=np.float64)
        sums[index + 1] = predictions[:, first:first + class_block]
        np.cumsum(sums, axis=0, out=sums)
        values[:, first:first + class_block] = (sums[bins + 1] - sums[lo])[keep] / covering[keep, None]
    bin_starts = bins[keep] * stride
    return bin_starts, np.minimum(bin_starts + stride, chrom_length), values


@dataclass
class ChromosomeTrack:
    chrom: str
    starts: np.ndarray
    ends: np.ndarray
    values: np.ndarray  # (bins, classes)


def labelled_window(metadata):
    """(labelled window, flank) of a model: its input is the labelled window with `flank` bp of
    sequence on each side (make-training-windows --flank), and its prediction is about the
    labelled part only."""
    flank = int(metadata.get("windows_table", {}).get("flank", 0))
    return int(metadata["window"]) - 2 * flank, flank


def predict_tracks(model, metadata, genome, chroms, settings, regions=None):
    """ChromosomeTrack per chromosome, chromosome by chromosome (memory flat in genome size);
    `regions`: dict chrom -> merged (starts, ends) to restrict the windows to. Windows, their N
    filter, `regions` and bins follow the labelled windows; a flanked model reads each with its
    flanks, and labelled windows whose flanks leave the chromosome are not scored."""
    settings.check()
    window = int(metadata["window"])
    labelled, flank = labelled_window(metadata)
    plan, reason = None, "--trunk per-window was given"
    if settings.trunk == "auto" and accelerator().startswith("GPU"):
        reason = "on a GPU whole batches of windows are faster (--trunk shared to force sharing)"
    elif settings.trunk != "per-window":
        plan, reason = trunk_plan(model)
    if plan is None:
        message(f"{model.name}: predicting window by window: {reason}")
    short = [c for c in chroms if genome.lengths[c] < window]
    if short:
        raise InputError(f"chromosome(s) {', '.join(short[:5])} shorter than the model's {window} bp window")
    with ProgressBar(sum(genome.lengths[c] // settings.stride for c in chroms), "predicting", "windows") as bar:
        for chrom in chroms:
            starts = scored_windows(genome, chrom, labelled, settings, regions[chrom] if regions else None)
            starts = starts[(starts >= flank) & (starts + labelled + flank <= genome.lengths[chrom])]
            predictions = predict_starts(model, genome, chrom, starts - flank, window, settings, bar, plan)
            predictions = genome_probabilities(predictions, metadata)
            yield ChromosomeTrack(chrom, *bin_means(starts, predictions, genome.lengths[chrom], labelled,
                                                    settings.stride))


class TrackWriters:
    """One bigWig (or bedGraph) per class, with the genome's chromosome sizes in the header."""

    def __init__(self, paths, chrom_sizes, bedgraph=False):
        self.bedgraph = bedgraph
        if bedgraph:
            self.handles = [open(path, "w") for path in paths]
        else:
            self.handles = [BigWigWriter(path, chrom_sizes) for path in paths]

    def add(self, track):
        if len(track.starts) == 0:
            return
        for i, handle in enumerate(self.handles):
            values = track.values[:, i].astype(np.float64)
            if self.bedgraph:
                handle.write("".join(f"{track.chrom}\t{s}\t{e}\t{v:.6g}\n"
                                     for s, e, v in zip(track.starts.tolist(), track.ends.tolist(), values.tolist())))
            else:
                handle.add_entries([track.chrom] * len(values), track.starts.tolist(), ends=track.ends.tolist(),
                                   values=values.tolist())

    def close(self):
        for handle in self.handles:
            handle.close()


def peak_half_width(window, stride):
    """Bins each side of a summit that a predicted region may span: the region is then at most
    window + stride bp, about the one window whose score located the site."""
    return window // (2 * stride)


def threshold_regions(track, class_index, threshold, stride, half_width):
    """Predicted regions of one class around local maxima of the track: (starts, ends, summit
    values, summits as offsets from the region's start).

    A summit is a bin with value >= threshold and no higher bin within r = 2 * half_width + 1
    bins (of equal ones the first; on a flat stretch one every r + 1 bins); its region is the
    summit bin and up to `half_width` bins each side while they stay >= threshold. So a region
    is at most 2 * half_width + 1 bins however long the stretch above the threshold (the bins
    only say that some window around them scored high), and regions do not overlap. Works on the
    chromosome's full bin grid (`stride`), where bins without a value are -inf."""
    empty = np.zeros(0, dtype=np.int64)
    if len(track.starts) == 0:
        return empty, empty, np.zeros(0), empty
    bins = track.starts // stride
    values = np.full(int(bins[-1]) + 1, -np.inf)
    values[bins] = track.values[:, class_index]
    position = np.zeros(len(values), dtype=np.int64)
    position[bins] = np.arange(len(bins))
    radius = 2 * half_width + 1
    padded = np.r_[np.full(radius, -np.inf), values, np.full(radius + 1, -np.inf)]
    # Window maxima: moving[i] is the max of bins i - radius .. i - 1, moving[i + radius + 1] of i + 1 .. i + radius.
    moving = np.lib.stride_tricks.sliding_window_view(padded, radius).max(axis=1)
    index = np.arange(len(values))
    left, right = moving[:len(values)], moving[radius + 1:radius + 1 + len(values)]
    above = values >= threshold
    plateau_start = np.maximum.accumulate(np.where(np.r_[True, values[1:] != values[:-1]], index, 0))
    offset = index - plateau_start
    summit = above & (values >= right) & ((values > left) | ((offset > 0) & (offset % (radius + 1) == 0)))
    run_first = np.maximum.accumulate(np.where(above & ~np.r_[False, above[:-1]], index, 0))
    run_last = np.minimum.accumulate(np.where(above & ~np.r_[above[1:], False], index, len(values))[::-1])[::-1]
    peaks = np.flatnonzero(summit)
    first = position[np.maximum(peaks - half_width, run_first[peaks])]
    last = position[np.minimum(peaks + half_width, run_last[peaks])]
    middle = position[peaks]
    starts = track.starts[first]
    summits = (track.starts[middle] + track.ends[middle]) // 2 - starts
    return starts, track.ends[last], values[peaks], summits
