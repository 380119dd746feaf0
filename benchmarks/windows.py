"""Benchmark: deepgmap-make-training-windows vs. the original's bedtools pipeline.

On chr20 (63 Mb), every 1,000 bp window (stride 300) is labelled by the summit rule with
  baseline  bedtools makewindows | full-length filter [| bedtools nuc N filter], then per
            class bedtools intersect -sorted -c against the summit points, pasted together
  ours      deepgmap-make-training-windows
in three settings: 3 classes without the N filter (labels only), 3 classes with windows of
> 50% N dropped (bedtools nuc needs a plain FASTA, decompressed for it before the timing;
ours reads the bgzip file), and 99 classes. Labels are compared row by row; wall times are
the best of --repeats runs, measured in the same run.

Usage: python benchmarks/windows.py [--data ../shared/data] [--repeats 3] [--threads 2]
"""

import argparse
import gzip
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from deepgmap_core.peaks import read_peaks  # noqa: E402
from deepgmap_core.windows import read_windows_table  # noqa: E402

TOOL = str(Path(sys.executable).parent / "deepgmap-make-training-windows")


def best_time(command, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, shell=True, check=True, executable="/bin/bash", stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def write_summit_points(peaks_path, out_path):
    """Summit points, sorted as bedtools intersect -sorted wants them."""
    with open(out_path, "w") as handle:
        for chrom, intervals in sorted(read_peaks(peaks_path).by_chrom.items()):
            for summit in np.sort(intervals.summits):
                handle.write(f"{chrom}\t{summit}\t{summit + 1}\n")


def baseline_command(work, points, n_filter):
    """The bedtools pipeline; the summit points are made beforehand (a head start for it)."""
    windows = "bedtools makewindows -g chrom.sizes -w 1000 -s 300 | awk '$3-$2==1000'"
    if n_filter:  # columns 10-11 of bedtools nuc: N and other non-ACGT bases
        windows += " | bedtools nuc -fi chr20.fa -bed - | awk 'NR>1 && $10+$11<=500 {print $1\"\\t\"$2\"\\t\"$3}'"
    intersects = " && ".join(
        f"bedtools intersect -sorted -a windows.bed -b {p} -c | awk '{{print ($4>0)}}' > class{i}.txt"
        for i, p in enumerate(points))
    columns = " ".join(f"class{i}.txt" for i in range(len(points)))
    return f"cd {work} && {windows} > windows.bed && {intersects} && paste windows.bed {columns} > baseline.tsv"


def compare(name, work, peak_files, points, extra, repeats, threads):
    n_filter = "--max-n-fraction" not in extra
    base = best_time(baseline_command(work, points, n_filter), repeats)
    names = " ".join(f"c{i}" for i in range(len(peak_files)))
    ours = best_time(f"{TOOL} --genome {work / 'chr20.fa.gz'} --peaks {' '.join(map(str, peak_files))} "
                     f"--names {names} --keep-negatives 1 -p {threads} {extra} -o {work / 'ours.tsv'}", repeats)
    table = read_windows_table(str(work / "ours.tsv"))
    theirs = np.loadtxt(work / "baseline.tsv", usecols=range(1, 3 + len(points)), dtype=np.int64, ndmin=2)
    same = np.array_equal(theirs[:, 0], table.starts) and np.array_equal(theirs[:, 2:], table.labels)
    n = len(table.starts)
    print(f"{name}: {n:,} windows x {len(peak_files)} classes")
    print(f"  bedtools pipeline  {base:7.3f} s  {n / base:12,.0f} windows/s")
    print(f"  deepgmap           {ours:7.3f} s  {n / ours:12,.0f} windows/s")
    print(f"  speed-up           {base / ours:7.1f} x  labels identical: {same}")
    return same


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the real data folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="threads for ours (bedtools uses one)")
    args = parser.parse_args()
    hg19 = Path(args.data) / "hg19"
    if shutil.which("bedtools") is None:
        sys.exit("bedtools is needed for the baseline (`make setup` installs it)")
    # Three real region files with records on chr20; the blacklist stands in for a third class.
    peak_files = [hg19 / "CTCF.chr20.bed", hg19 / "GM12878_CTCF.top500.bed", hg19 / "hg19-blacklist.v2.bed"]
    with tempfile.TemporaryDirectory(prefix="deepgmap-bench-") as work:
        work = Path(work)
        (work / "chrom.sizes").write_text("chr20\t63025520\n")
        for suffix in (".fa.gz", ".fa.gz.fai", ".fa.gz.gzi"):
            shutil.copy(hg19 / f"chr20{suffix}", work / f"chr20{suffix}")
        with gzip.open(hg19 / "chr20.fa.gz", "rb") as source, open(work / "chr20.fa", "wb") as target:
            shutil.copyfileobj(source, target)
        points = []
        for i, path in enumerate(peak_files):
            points.append(work / f"points{i}.bed")
            write_summit_points(str(path), points[-1])
        print(f"{time.strftime('%Y-%m-%d')}, {args.threads} thread(s) for ours, best of {args.repeats}")
        same = [compare("chr20, labels only", work, peak_files, points, "--max-n-fraction 1",
                        args.repeats, args.threads),
                compare("chr20, windows > 50% N dropped", work, peak_files, points, "",
                        args.repeats, args.threads),
                compare("chr20, 99 classes, labels only", work, peak_files * 33, points * 33,
                        "--max-n-fraction 1", 1, args.threads)]
        print(f"peak memory of the largest run: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")
        if not all(same):
            sys.exit("labels differ between deepgmap and the bedtools pipeline")


if __name__ == "__main__":
    main()
