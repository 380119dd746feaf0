"""Tracks: per-bin values from window predictions, bigWig and bedGraph writing, predicted regions
from a track, and merging bigWigs written by separate jobs into one.

Merging: genome-wide prediction split by chromosome (predict-bigwig --chroms, or one Galaxy job
per chromosome FASTA) joined back together. The inputs must agree on the size of every chromosome they name, and their intervals must not
overlap. The output's header lists every chromosome of the inputs in the order they first
appear (input by input, each in its header's order), and its intervals are the inputs'
intervals, unchanged: merging the per-chromosome parts of a genome-wide run gives the bigWig
that the single run writes.
"""

import errno
import os
import shutil
import struct
from dataclasses import dataclass

import numpy as np
import pyBigWig

from .errors import InputError
from .fileio import atomic_paths, check_readable, output_folder

ZOOM_LEVELS = 10  # of every bigWig the suite writes: merged tracks equal the single job's
BIGWIG_MAGIC = (0x888FFC26).to_bytes(4, "little")


@dataclass
class MergeSummary:
    chromosomes: int
    chromosomes_with_data: int
    intervals: int


def open_bigwig(path):
    """pyBigWig handle of `path`; InputError unless it is a whole bigWig: its magic number (checked
    first, so that libBigWig prints nothing about other files), and every section its header and
    zoom headers point to inside the file (libBigWig reads a truncated file's first intervals and
    silently misses the rest)."""
    check_readable(path, "bigWig")
    with open(path, "rb") as handle:
        header = handle.read(64)
        if header[:4] != BIGWIG_MAGIC:
            raise InputError(f"{path}: not a bigWig file")
        zoom_levels, chrom_tree, full_data, full_index = struct.unpack_from("<2xH3Q", header, 4)
        zooms = handle.read(24 * zoom_levels)
    # each offset with the least its section holds: a B+ tree and an R-tree header, a data count
    ends = [chrom_tree + 32, full_data + 4, full_index + 48]
    for level in range(len(zooms) // 24):
        data, index = struct.unpack_from("<8x2Q", zooms, 24 * level)
        ends += [data + 4, index + 48]
    if len(header) < 64 or len(zooms) < 24 * zoom_levels or max(ends) > os.path.getsize(path):
        raise InputError(f"{path}: truncated bigWig (its header points past the end of the file)")
    return pyBigWig.open(path)


class BigWigWriter:
    """A bigWig being written, the genome's chromosome sizes in its header and the suite's zoom
    levels. libBigWig reports a full disk or an unwritable file only as a RuntimeError (and once
    crashed on a file it could not open): here that is an OSError naming the file, no space left
    when the folder has less than a megabyte free."""

    def __init__(self, path, chrom_sizes):
        self.path = path
        self.handle = self._checked(pyBigWig.open, path, "w")
        if self.handle is None:
            raise self._failure()
        self._checked(self.handle.addHeader, list(chrom_sizes.items()), maxZooms=ZOOM_LEVELS)

    def _failure(self):
        code = errno.ENOSPC if shutil.disk_usage(output_folder(self.path)).free < 1 << 20 else errno.EIO
        return OSError(code, os.strerror(code), self.path)

    def _checked(self, call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except RuntimeError:
            raise self._failure() from None

    def add_entries(self, *args, **kwargs):
        self._checked(self.handle.addEntries, *args, **kwargs)

    def close(self):
        self._checked(self.handle.close)


def merged_chrom_sizes(paths, handles):
    """Chromosome -> size over all inputs, in order of first appearance; InputError where two
    inputs give one chromosome different sizes (bigWigs of different genome assemblies)."""
    sizes, named_by = {}, {}
    for path, handle in zip(paths, handles):
        for chrom, length in handle.chroms().items():
            if chrom in sizes and sizes[chrom] != length:
                raise InputError(f"{path}: {chrom} is {length:,} bp, but {sizes[chrom]:,} bp in {named_by[chrom]} "
                                 f"(bigWigs of different genomes cannot be merged)")
            sizes.setdefault(chrom, length)
            named_by.setdefault(chrom, path)
    return sizes


def chromosome_intervals(paths, handles, chrom):
    """(starts, ends, values) of `chrom` from all inputs, sorted by start; InputError where
    intervals of two inputs (or of one) overlap."""
    parts, sources = [], []
    for index, handle in enumerate(handles):
        if chrom in handle.chroms():
            intervals = handle.intervals(chrom) or ()
            parts.append(np.array(intervals, dtype=np.float64).reshape(-1, 3))
            sources.append(np.full(len(intervals), index))
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    table, source = np.concatenate(parts), np.concatenate(sources)
    order = np.argsort(table[:, 0], kind="stable")
    table, source = table[order], source[order]
    starts, ends = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
    overlapping = np.flatnonzero(starts[1:] < ends[:-1])
    if len(overlapping):
        i = overlapping[0]
        first, second = paths[source[i]], paths[source[i + 1]]
        where = f"{first} and {second}" if first != second else first
        raise InputError(f"{where}: intervals overlap on {chrom} at {starts[i + 1]:,}-{ends[i]:,} "
                         f"(merge only the parts of one run, each chromosome or region once)")
    return starts, ends, table[:, 2]


def merge_bigwigs(paths, output):
    """Write the merge of the bigWigs `paths` to `output` (renamed into place when complete)."""
    if not paths:
        raise InputError("no bigWig to merge")
    output_folder(output)  # before the inputs are read
    handles = []
    try:
        for path in paths:
            handles.append(open_bigwig(path))
        sizes = merged_chrom_sizes(paths, handles)
        with_data, total = 0, 0
        with atomic_paths([output]) as (temporary,):
            writer = BigWigWriter(temporary, sizes)
            try:
                for chrom in sizes:
                    starts, ends, values = chromosome_intervals(paths, handles, chrom)
                    if len(starts):
                        writer.add_entries([chrom] * len(starts), starts.tolist(), ends=ends.tolist(),
                                           values=values.tolist())
                        with_data, total = with_data + 1, total + len(starts)
            finally:
                writer.close()
    finally:
        for handle in handles:
            handle.close()
    return MergeSummary(len(sizes), with_data, total)


class BinMeans:
    """Per-bin means of window predictions, a chromosome's windows given in chunks in start
    order: each stride-sized bin gets the mean over the scored windows that overlap it, and is
    given out as soon as no later window can overlap it, so only about a chunk's bins are held
    (the bins of a long chromosome for hundreds of classes at once would take gigabytes)."""

    def __init__(self, chrom_length, window, stride):
        self.chrom_length, self.stride = chrom_length, stride
        self.span = -(-window // stride)  # window k (start k * stride) overlaps bins k .. k + span - 1
        self.next_bin = 0                 # the first bin not given out yet
        # Held window positions (grid index first, first + 1, ...): predictions, 0 where no window.
        self.first, self.grid, self.present = 0, None, np.zeros(0, dtype=bool)

    def add(self, starts, predictions, done_before=None):
        """Add windows (`starts` ascending, after those added before; predictions (windows,
        classes)) and give out (bin starts, bin ends, values (bins, classes)) of the bins before
        bin `done_before`, where the next chunk's first window starts (all bins when None)."""
        k = starts // self.stride
        if self.grid is None:
            self.grid = np.zeros((0, predictions.shape[1]), dtype=np.float32)
        if len(k):
            if not len(self.present):
                self.first = int(k[0])
            grow = int(k[-1]) + 1 - self.first - len(self.present)
            self.grid = np.concatenate([self.grid, np.zeros((max(grow, 0), self.grid.shape[1]), np.float32)])
            self.present = np.concatenate([self.present, np.zeros(max(grow, 0), dtype=bool)])
            self.grid[k - self.first], self.present[k - self.first] = predictions, True
        last_covered = self.first + len(self.present) + self.span - 1  # past the last bin a held window overlaps
        stop = last_covered if done_before is None else min(int(done_before), last_covered)
        begin = max(self.next_bin, self.first)
        # Bin j is overlapped by windows j - span + 1 .. j: the sum of `span` shifted rows of the grid.
        lo, n = begin - self.first, max(stop - begin, 0)
        padded = np.concatenate([np.zeros((self.span - 1, self.grid.shape[1]), np.float32), self.grid,
                                 np.zeros((self.span, self.grid.shape[1]), np.float32)])
        counted = np.concatenate([np.zeros(self.span - 1, bool), self.present, np.zeros(self.span, bool)])
        sums = np.zeros((n, self.grid.shape[1]), dtype=np.float32)
        counts = np.zeros(n, dtype=np.int64)
        for shift in range(self.span):  # padded row r + span - 1 is grid row r
            sums += padded[lo + self.span - 1 - shift:lo + self.span - 1 - shift + n]
            counts += counted[lo + self.span - 1 - shift:lo + self.span - 1 - shift + n]
        keep = np.flatnonzero(counts > 0)
        values = sums[keep] / counts[keep, None].astype(np.float32)
        bin_starts = (begin + keep) * self.stride
        self.next_bin = max(stop, begin) if done_before is None else max(int(done_before), begin)
        drop = int(np.clip(self.next_bin - self.span + 1 - self.first, 0, len(self.present)))
        self.grid, self.present, self.first = self.grid[drop:], self.present[drop:], self.first + drop
        return bin_starts, np.minimum(bin_starts + self.stride, self.chrom_length), values


def bin_means(starts, predictions, chrom_length, window, stride):
    """(bin starts, bin ends, values (bins, classes)) of the bins that the windows `starts` of one
    chromosome overlap (BinMeans, all windows at once)."""
    return BinMeans(chrom_length, window, stride).add(starts, predictions)


@dataclass
class ChromosomeTrack:
    chrom: str
    starts: np.ndarray
    ends: np.ndarray
    values: np.ndarray  # (bins, classes)

    @classmethod
    def joined(cls, pieces):
        """One track of a chromosome's consecutive pieces."""
        return cls(pieces[0].chrom, *(np.concatenate([getattr(p, name) for p in pieces])
                                      for name in ("starts", "ends", "values")))


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
        # The bins' Python lists are made once for all the classes' files.
        chroms, starts, ends = [track.chrom] * len(track.starts), track.starts.tolist(), track.ends.tolist()
        for i, handle in enumerate(self.handles):
            values = track.values[:, i].astype(np.float64).tolist()
            if self.bedgraph:
                handle.write("".join(f"{track.chrom}\t{s}\t{e}\t{v:.6g}\n" for s, e, v in zip(starts, ends, values)))
            else:
                handle.add_entries(chroms, starts, ends=ends, values=values)

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
