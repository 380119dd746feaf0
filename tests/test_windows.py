"""Window tiling and labels, checked against bedtools (through pybedtools) on real chr20 CTCF peaks."""

import numpy as np
import pybedtools
import pytest

from deepgmap_core import windows as windows_module
from deepgmap_core.cli.make_training_windows import main
from deepgmap_core.genome import Genome
from deepgmap_core.peaks import read_peaks
from deepgmap_core.windows import (GC_BINS, count_n_bases, count_window_bases, gc_matched_keep_probability,
                                   label_windows_by_overlap, label_windows_by_summit, read_windows_table,
                                   window_starts, windows_touching)

CHR20_LENGTH = 63_025_520


@pytest.fixture(scope="module")
def chr20(shared_data):
    hg19 = shared_data / "hg19"
    windows = pybedtools.BedTool().window_maker(g={"chr20": (0, CHR20_LENGTH)}, w=1000, s=300)
    full = windows.filter(lambda w: w.length == 1000).saveas()
    return {"fasta": str(hg19 / "chr20.fa.gz"), "ctcf": str(hg19 / "CTCF.chr20.bed"),
            "blacklist": str(hg19 / "hg19-blacklist.v2.bed"), "bedtools_windows": full}


def starts_of(bedtool):
    return np.array(sorted(interval.start for interval in bedtool), dtype=np.int64)


def test_window_tiling_equals_bedtools_makewindows(chr20):
    ours = window_starts(CHR20_LENGTH, 1000, 300)
    np.testing.assert_array_equal(ours, starts_of(chr20["bedtools_windows"]))
    assert ours[-1] + 1000 <= CHR20_LENGTH < ours[-1] + 1300
    assert len(window_starts(999, 1000, 300)) == 0 and list(window_starts(1000, 1000, 300)) == [0]


def test_summit_labels_equal_bedtools_on_summit_points(chr20):
    peaks = read_peaks(chr20["ctcf"]).by_chrom["chr20"]
    n_windows = len(window_starts(CHR20_LENGTH, 1000, 300))
    ours = label_windows_by_summit(peaks.summits, n_windows, 1000, 300)
    points = pybedtools.BedTool([("chr20", int(s), int(s) + 1) for s in peaks.summits])
    theirs = starts_of(chr20["bedtools_windows"].intersect(points, u=True))
    np.testing.assert_array_equal(np.flatnonzero(ours) * 300, theirs)
    assert 15_000 < ours.sum() < 25_000  # ~3.3 windows per summit, 6,611 peaks


@pytest.mark.parametrize("fractions", [(0.6, 0.4), (0.3, 0.9), (1.0, 1.0)])
def test_overlap_labels_equal_bedtools_intersect_f_F_e(chr20, fractions):
    peaks = read_peaks(chr20["ctcf"]).by_chrom["chr20"]
    n_windows = len(window_starts(CHR20_LENGTH, 1000, 300))
    ours = label_windows_by_overlap(peaks.starts, peaks.ends, n_windows, 1000, 300, *fractions)
    theirs = starts_of(chr20["bedtools_windows"].intersect(chr20["ctcf"], u=True, f=fractions[0],
                                                           F=fractions[1], e=True))
    np.testing.assert_array_equal(np.flatnonzero(ours) * 300, theirs)
    assert ours.sum() > 1000


@pytest.mark.parametrize("marked_span", [0, 10 ** 9], ids=["summed", "marked"])
def test_any_overlap_and_blacklist_equal_bedtools(chr20, marked_span, monkeypatch):
    monkeypatch.setattr(windows_module, "_MARKED_SPAN", marked_span)  # either way of finding the windows
    n_windows = len(window_starts(CHR20_LENGTH, 1000, 300))
    for path in (chr20["ctcf"], chr20["blacklist"]):
        intervals = read_peaks(path).by_chrom["chr20"]
        ours = windows_touching(intervals.starts, intervals.ends, n_windows, 1000, 300)
        theirs = starts_of(chr20["bedtools_windows"].intersect(path, u=True))
        np.testing.assert_array_equal(np.flatnonzero(ours) * 300, theirs)


def test_n_counts_equal_direct_count_on_real_sequence(chr20):
    with Genome(chr20["fasta"]) as genome:
        sequence = genome.fetch("chr20", 0, CHR20_LENGTH).upper()
        for window, stride in ((1000, 300), (500, 200), (1000, 333)):
            n_windows = len(window_starts(CHR20_LENGTH, window, stride))
            ours = count_n_bases(genome, "chr20", n_windows, window, stride)
            # Independent count: all windows' bases gathered by index, compared with ACGT.
            sample = np.random.default_rng(1).choice(n_windows, 3000, replace=False)
            sample = np.union1d(sample, [0, n_windows - 1])
            acgt = np.isin(np.frombuffer(sequence, np.uint8), np.frombuffer(b"ACGT", np.uint8))
            index = sample[:, None] * stride + np.arange(window)
            np.testing.assert_array_equal(ours[sample], window - acgt[index].sum(axis=1))
            assert ours[0] == window and 0 < (ours == 0).mean() < 1  # chr20 starts with N


def test_end_to_end_labels_and_filters_equal_bedtools(chr20, tmp_path, test_data):
    out = tmp_path / "windows.tsv"
    assert main(["--genome", chr20["fasta"], "--peaks", chr20["ctcf"], chr20["ctcf"], "--names", "summit_rule",
                 "copy", "--blacklist", chr20["blacklist"], "--valid-chroms", "chr20", "-o", str(out)]) == 0
    table = read_windows_table(str(out))
    # Expected rows: bedtools windows with <= 50% N, not touching the blacklist.
    kept = chr20["bedtools_windows"].intersect(chr20["blacklist"], v=True)
    with Genome(chr20["fasta"]) as genome:
        few_n = [w for w in kept if genome.fetch("chr20", w.start, w.end).upper().count(b"N") <= 500]
    np.testing.assert_array_equal(table.starts, sorted(w.start for w in few_n))
    np.testing.assert_array_equal(table.ends, table.starts + 1000)
    assert set(table.splits) == {"valid"} and set(table.chroms) == {"chr20"}
    peaks = read_peaks(chr20["ctcf"]).by_chrom["chr20"]
    summit_starts = label_windows_by_summit(peaks.summits, len(window_starts(CHR20_LENGTH, 1000, 300)), 1000, 300)
    np.testing.assert_array_equal(table.labels[:, 0], summit_starts[table.starts // 300])
    np.testing.assert_array_equal(table.labels[:, 0], table.labels[:, 1])


def test_gc_counts_equal_direct_count_on_real_sequence(chr20):
    with Genome(chr20["fasta"]) as genome:
        sequence = np.frombuffer(genome.fetch("chr20", 0, CHR20_LENGTH).upper(), np.uint8)
        is_gc = (sequence == ord("G")) | (sequence == ord("C"))
        for window, stride in ((1000, 300), (200, 50)):
            n_windows = len(window_starts(CHR20_LENGTH, window, stride))
            n_bases, gc_bases = count_window_bases(genome, "chr20", n_windows, window, stride, gc=True)
            np.testing.assert_array_equal(n_bases, count_n_bases(genome, "chr20", n_windows, window, stride))
            sample = np.union1d(np.random.default_rng(2).choice(n_windows, 3000, replace=False), [0, n_windows - 1])
            bases = sample[:, None] * stride + np.arange(window)
            np.testing.assert_array_equal(gc_bases[sample], is_gc[bases].sum(axis=1))
            assert gc_bases[0] == 0 and 0.3 < gc_bases[n_bases == 0].mean() / window < 0.6


@pytest.mark.parametrize("keep", [0.02, 0.25, 0.9])
def test_gc_matched_probabilities_keep_the_expected_number_and_follow_the_positives(chr20, keep):
    """On real chr20 windows labelled with CTCF: the kept negatives' expected number is keep x the
    negatives, and in every GC bin that is not short of negatives it is proportional to the positives."""
    n_windows = len(window_starts(CHR20_LENGTH, 1000, 300))
    with Genome(chr20["fasta"]) as genome:
        n_bases, gc_bases = count_window_bases(genome, "chr20", n_windows, 1000, 300, gc=True)
    eligible = n_bases <= 500
    gc_fraction = gc_bases / np.maximum(1000 - n_bases, 1)
    peaks = read_peaks(chr20["ctcf"]).by_chrom["chr20"]
    labels = label_windows_by_summit(peaks.summits, n_windows, 1000, 300)
    positive, negative = eligible & labels, eligible & ~labels
    probability, short_bins = gc_matched_keep_probability(gc_fraction, positive, negative, keep)
    assert ((probability >= 0) & (probability <= 1)).all()
    assert probability[negative].sum() == pytest.approx(keep * negative.sum(), rel=1e-9)
    bins = np.minimum((gc_fraction * GC_BINS).astype(int), GC_BINS - 1)
    expected_kept = np.bincount(bins[negative], weights=probability[negative], minlength=GC_BINS)
    positives = np.bincount(bins[positive], minlength=GC_BINS)
    short = (positives > 0) & np.isclose(expected_kept, np.bincount(bins[negative], minlength=GC_BINS))
    assert short.sum() == short_bins
    filling = (positives > 0) & ~short
    ratios = expected_kept[filling] / positives[filling]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)
    assert (expected_kept[positives == 0] == 0).all() or short.sum() == (positives > 0).sum()
    # Without any positive there is nothing to match: every negative is kept with probability keep.
    unmatched, _ = gc_matched_keep_probability(gc_fraction, np.zeros_like(positive), negative, keep)
    np.testing.assert_allclose(unmatched[negative], keep)
