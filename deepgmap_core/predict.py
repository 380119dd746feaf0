"""Genome-wide prediction as tracks: windows scored by a trained model, aggregated into bins.

Windows of the model's size start every `stride` bp (as make-training-windows tiles them);
windows with more than `max_n_fraction` N are not scored. Each stride-sized bin of a
chromosome gets the mean prediction of the scored windows that overlap it, so the track is
a valid, non-overlapping bedGraph/bigWig whose value is "the model's mean probability for
the windows around this bin"; bins no scored window overlaps have no value. Predictions are
probabilities at the genome's class balance when the model file records the correction for
its training windows' negative subsampling (deepgmap_core.calibration).
"""

import keras
import numpy as np

from .backend import accelerator
from .batching import prefetched
from .calibration import genome_probabilities
from .errors import InputError
from .genome import one_hot_windows, reverse_complement_one_hot
from .progress import ProgressBar, message
from .shared_trunk import head_predictions, trunk_features, trunk_plan
from .tracks import BinMeans, ChromosomeTrack
from .windows import count_n_bases, window_starts, windows_touching

# Window predictions (windows x classes) held at a time: 64 MB of float32, whatever the classes.
CHUNK_VALUES = 1 << 24


def check_chroms_in_genome(genome, chroms):
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


def window_chunks(starts, stride, size):
    """(first, end) of consecutive chunks of the ascending window `starts`, each of at most `size`
    windows and at most `size` bins from its first window's to its last window's."""
    grid = starts // stride
    first = 0
    while first < len(starts):
        end = min(first + size, int(np.searchsorted(grid, grid[first] + size)))
        yield first, end
        first = end


def predict_tracks(model, info, genome, chroms, settings, regions=None, on_windows=None):
    """ChromosomeTrack pieces, chromosome by chromosome and in order along each, a chunk of
    windows at a time (memory flat in genome size and bounded in classes x chromosome length);
    `regions`: dict chrom -> merged (starts, ends) to restrict the windows to. Windows, their N
    filter, `regions` and bins follow the labelled windows; a flanked model reads each with its
    flanks, and labelled windows whose flanks leave the chromosome are not scored.
    `on_windows(chrom, labelled starts, predictions)` sees each chunk's window predictions (the
    model's outputs, before the class-balance correction) before they are binned."""
    settings.check()
    window, labelled, flank = info.window, info.labelled_window, info.flank
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
    chunk = max(settings.batch_size, CHUNK_VALUES // len(info.class_names))
    with ProgressBar(sum(genome.lengths[c] // settings.stride for c in chroms), "predicting", "windows") as bar:
        for chrom in chroms:
            starts = scored_windows(genome, chrom, labelled, settings, regions[chrom] if regions else None)
            starts = starts[(starts >= flank) & (starts + labelled + flank <= genome.lengths[chrom])]
            binner = BinMeans(genome.lengths[chrom], labelled, settings.stride)
            for first, end in window_chunks(starts, settings.stride, chunk):
                predictions = predict_starts(model, genome, chrom, starts[first:end] - flank, window, settings, bar,
                                             plan)
                if on_windows is not None:
                    on_windows(chrom, starts[first:end], predictions)
                done_before = starts[end] // settings.stride if end < len(starts) else None
                yield ChromosomeTrack(chrom, *binner.add(starts[first:end], genome_probabilities(predictions, info),
                                                         done_before))
