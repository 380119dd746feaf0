"""Benchmark: FRiP and cFRiP of deepgmap-bam-to-peaks vs. deepTools, on the same inputs.

Reads: the ENCODE K562 H3K4me3 BAM (205,035 reads on chr22); peaks: called once by our tool
(MACS3), merged, and given to both.
  deepTools  reads in peaks: countReadsPerBin over the merged peaks (the paper's module);
             covered bases: bamCoverage --binSize 1 as bedGraph, bases with coverage > 0
  ours       deepgmap_core.qc.count_reads (both numbers in one pass over the BAM index)
Both use the same number of processes. Times are the best of --repeats; the FRiP and
covered fractions are printed side by side.

Usage: python benchmarks/qc.py [--data ../shared/data] [--threads 2] [--repeats 3]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from deepgmap_core.alignments import IndexedBam, ReadFilter  # noqa: E402
from deepgmap_core.peaks import merge_intervals, read_peaks  # noqa: E402
from deepgmap_core.qc import count_reads  # noqa: E402


def best_of(repeats, function):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def deeptools_in_peaks(bam, merged_bed, threads):
    from deeptools.countReadsPerBin import CountReadsPerBin

    return int(CountReadsPerBin([bam], bedFile=[merged_bed], numberOfProcessors=threads, verbose=False).run().sum())


def deeptools_covered(bam, bedgraph, threads):
    subprocess.run([str(Path(sys.executable).parent / "bamCoverage"), "-b", bam, "-o", bedgraph,
                    "--outFileFormat", "bedgraph", "--binSize", "1", "-p", str(threads)],
                   check=True, capture_output=True)
    table = np.loadtxt(bedgraph, usecols=(1, 2, 3), ndmin=2)
    return int(((table[:, 1] - table[:, 0]) * (table[:, 2] > 0)).sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bam = str(Path(args.data) / "hg19" / "K562_H3K4me3.chr22.bam")
    with tempfile.TemporaryDirectory(prefix="deepgmap-bench-") as work:
        peaks = f"{work}/peaks.narrowPeak"
        subprocess.run([str(Path(sys.executable).parent / "deepgmap-bam-to-peaks"), "--bam", bam, "--peaks", peaks],
                       check=True, capture_output=True)
        chr22 = read_peaks(peaks).by_chrom["chr22"]
        merged = merge_intervals(chr22.starts, chr22.ends)
        merged_bed = f"{work}/merged.bed"
        np.savetxt(merged_bed, np.column_stack(merged), fmt="chr22\t%d\t%d")
        with IndexedBam(bam) as reads:
            ours_time, counts = best_of(args.repeats, lambda: count_reads(
                reads, {"chr22": merged}, ReadFilter(), args.threads))
            total = counts.reads_total
            genome = sum(reads.lengths.values())
        frip_time, their_in_peaks = best_of(args.repeats, lambda: deeptools_in_peaks(bam, merged_bed, args.threads))
        cover_time, their_covered = best_of(
            1, lambda: deeptools_covered(bam, f"{work}/coverage.bedgraph", args.threads))
        starts, ends = read_spans_all(bam)
        twice = int((np.searchsorted(merged[0], ends) - np.searchsorted(merged[1], starts, side="right") > 1).sum())
    ours_frip, their_frip = counts.reads_in_peaks / total, their_in_peaks / total
    print(f"{time.strftime('%Y-%m-%d')}: K562 H3K4me3 chr22, {total:,} reads, {len(merged[0]):,} merged peaks, "
          f"{args.threads} process(es), best of {args.repeats}")
    print(f"  deepTools countReadsPerBin (FRiP)       {frip_time:7.3f} s  FRiP {their_frip:.6f}")
    print(f"  deepTools bamCoverage --binSize 1       {cover_time:7.3f} s  covered {their_covered / genome:.6f}")
    print(f"  deepgmap (FRiP and covered, one pass)   {ours_time:7.3f} s  FRiP {ours_frip:.6f}  "
          f"covered {counts.covered_bases / genome:.6f}")
    print(f"  speed-up vs countReadsPerBin alone {frip_time / ours_time:.1f} x, vs both {(frip_time + cover_time) / ours_time:.1f} x")
    print(f"  FRiP difference {abs(ours_frip - their_frip):.2e}: {twice} reads overlap two merged peaks, and "
          f"countReadsPerBin counts a read once per peak; covered-bases difference {counts.covered_bases - their_covered:+,}")


def read_spans_all(bam):
    with IndexedBam(bam) as reads:
        return reads.read_spans("chr22", 0, reads.lengths["chr22"], ReadFilter())


if __name__ == "__main__":
    main()
