"""Benchmark: the suite at genome scale on one machine (issue 18).

A synthetic genome of hg19's chromosome sizes (random sequence with N runs: the chromosome ends,
a 3 Mb centromere gap, scattered shorter runs) and synthetic peak files (summits drawn from a
shared pool of sites, as cell types share regulatory elements) are written once to a cache
folder outside the repository. Then each step runs as its own process, timed with its peak
memory (/usr/bin/time), beside the table's size on disk:
  make-training-windows   the whole genome with --classes classes (chr8 test, chr9 valid), and
                          with 100 of them for the read goal; its first step, reading the peak
                          files, alone, beside the line-at-a-time reader (for odd files)
  table read              read_windows_table on both tables with --threads threads (as the
                          tools read it), and the reader it replaced (kept in
                          tests/test_windows_reader.py) on the first --old-rows rows of the
                          100-class table beside this reader in one thread, in the same run
  train-model start-up    the --classes table: from the command to its first step (the table
                          read and checked, a narrow model built), and the whole one-step run
                          (at most 2,000 valid and test windows scored)
  predict-bigwig          the largest chromosome, every class, with that model (stopped after
                          --predict-minutes: its peak memory so far is shown)
The goals of issue 18 for a 2-core, 24 GB machine are printed beside the figures; a goal not
met is said so. --chroms runs a smaller genome (e.g. --chroms chr21 chr22, a few minutes).

Usage: python benchmarks/genome_scale.py [--chroms chr1 ...] [--classes 400] [--cache DIR]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
import pysam

from paper import REPO, Transcript, write_section

BIN = Path(sys.executable).parent
HG19_SIZES = {"chr1": 249250621, "chr2": 243199373, "chr3": 198022430, "chr4": 191154276, "chr5": 180915260,
              "chr6": 171115067, "chr7": 159138663, "chr8": 146364022, "chr9": 141213431, "chr10": 135534747,
              "chr11": 135006516, "chr12": 133851895, "chr13": 115169878, "chr14": 107349540, "chr15": 102531392,
              "chr16": 90354753, "chr17": 81195210, "chr18": 78077248, "chr19": 59128983, "chr20": 63025520,
              "chr21": 48129895, "chr22": 51304566, "chrX": 155270560, "chrY": 59373566}
SITES_PER_MB = 100  # the pool of sites the classes' peaks are drawn from
PEAK_SHARE = (0.1, 0.3)  # each class has peaks at this share of the pool's sites (uniform draw)
READ_GOAL_CLASSES = 100  # the read goal's table width
GB = 1024 ** 3


def default_cache():
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "deepgmap-benchmarks" / "genome_scale"


def write_genome(path, chroms, rng):
    """Random A/C/G/T with N runs, 60 bases a line, and its .fai index."""
    with open(path, "wb") as out:
        for chrom in chroms:
            length = HG19_SIZES[chrom]
            n_lines = -(-length // 60)
            bases = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, n_lines * 60, dtype=np.uint8)]
            runs = [(0, 10_000), (length - 10_000, length), (int(length * 0.4), int(length * 0.4) + 3_000_000)]
            for start in rng.integers(0, length, length // 5_000_000).tolist():
                runs.append((start, start + int(rng.integers(1_000, 50_000))))
            for start, end in runs:
                bases[start:end] = ord("N")
            lines = np.full((n_lines, 61), ord("\n"), dtype=np.uint8)
            lines[:, :60] = bases.reshape(-1, 60)
            # The last line holds the bases left, then its newline.
            out.write(f">{chrom}\n".encode() + lines.tobytes()[:length + n_lines - 1] + b"\n")
    pysam.faidx(str(path))


def write_peaks(folder, chroms, n_classes, rng):
    """One BED file of peaks (300 bp around a summit) per class."""
    sites = {chrom: rng.integers(20_000, HG19_SIZES[chrom] - 20_000, HG19_SIZES[chrom] * SITES_PER_MB // 10 ** 6)
             for chrom in chroms}
    for k in range(n_classes):
        share = rng.uniform(*PEAK_SHARE)
        lines = []
        for chrom in sorted(chroms):
            chosen = sites[chrom][rng.random(len(sites[chrom])) < share]
            summits = np.sort(chosen + rng.integers(-50, 51, len(chosen)))
            lines += [f"{chrom}\t{summit - 150}\t{summit + 150}\n" for summit in summits.tolist()]
        (folder / f"class{k:03d}.bed").write_text("".join(lines))


def prepare(cache, chroms, n_classes):
    """The genome and peak files, from the cache when already written."""
    folder = cache / f"{'-'.join(chroms) if set(chroms) != set(HG19_SIZES) else 'hg19'}.{n_classes}"
    genome, done = folder / "genome.fa", folder / "complete"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(18)
        write_genome(genome, chroms, rng)
        write_peaks(folder, chroms, n_classes, rng)
        done.touch()
    return genome, sorted(folder.glob("class*.bed"))


Measurement = namedtuple("Measurement", "seconds peak stdout finished cpu_seconds")


def measured(command, what, limit_minutes=None):
    """Run `command`, stopped after `limit_minutes` (None: no limit): a Measurement of its wall
    seconds, peak memory (GB), stdout, whether it finished within the limit, and its CPU seconds
    (user + system, all threads)."""
    limit = ["timeout", f"{limit_minutes}m"] if limit_minutes else []
    with tempfile.NamedTemporaryFile("r", suffix=".time") as usage:
        run = subprocess.run(["/usr/bin/time", "-f", "%e %M %U %S", "-o", usage.name, *limit, *map(str, command)],
                             capture_output=True, text=True)
        finished = not (limit and run.returncode == 124)
        if run.returncode and finished:
            sys.exit(f"{what} failed:\n{run.stderr[-3000:]}")
        seconds, kilobytes, user, system = usage.read().split()[-4:]
    return Measurement(float(seconds), int(kilobytes) * 1024 / GB, run.stdout, finished, float(user) + float(system))


def peak_so_far(pid):
    """A running process's peak memory (GB) so far."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024 / GB


def train_start_up(command):
    """Run train-model: its seconds and peak memory (GB) when it announces its first epoch (the
    table read and checked, the model built), and of the whole run."""
    started, start_up, lines = time.monotonic(), None, []
    process = subprocess.Popen(list(map(str, command)), stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        lines.append(line)
        if start_up is None and " steps of " in line:
            start_up = time.monotonic() - started, peak_so_far(process.pid)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode or start_up is None:
        sys.exit(f"train-model failed (exit {process.returncode}):\n{''.join(lines[-10:])}")
    return start_up, (time.monotonic() - started, usage.ru_maxrss * 1024 / GB)


def read_in_child(reader, path, *arguments):
    """The command of one table read by `reader` (module, function) with `arguments` after the
    path, in a process of its own: it prints the rows read and the seconds taken."""
    code = ("import sys, time\n"
            f"sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}]\n"
            f"from {reader[0]} import {reader[1]} as read\n"
            "started = time.perf_counter()\n"
            f"table = read({', '.join(map(repr, (str(path), *arguments)))})\n"
            "print(len(table.starts), time.perf_counter() - started)\n")
    return [sys.executable, "-c", code]


def peak_read_in_child(paths, threads, line_reader):
    """The command that reads the peak files as make-training-windows does (`threads` at once),
    with the line-at-a-time reader if `line_reader`, in a process of its own: it prints the
    records read and the seconds taken."""
    code = ("import sys, time\n"
            f"sys.path[:0] = [{str(REPO)!r}]\n"
            "from deepgmap_core import peaks\n"
            "from deepgmap_core.parallel import in_order\n"
            + ("peaks._parse_bytes = lambda data: None\n" if line_reader else "") +
            "started = time.perf_counter()\n"
            f"records = sum(p.count for p in in_order(peaks.read_peaks, sys.argv[1:], {threads}))\n"
            "print(records, time.perf_counter() - started)\n")
    return [sys.executable, "-c", code, *paths]


def verdict(met):
    return "met" if met else "NOT MET"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chroms", nargs="+", default=list(HG19_SIZES), help="hg19 chromosomes to simulate")
    parser.add_argument("--classes", type=int, default=400)
    parser.add_argument("--old-rows", type=int, default=200_000, help="rows read by the reader it replaced")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--predict-minutes", type=float, default=10, help="predict-bigwig is stopped after this")
    parser.add_argument("--cache", default=str(default_cache()), help="where the genome and peaks are kept")
    parser.add_argument("--results", help="write the output to this RESULTS.md")
    args = parser.parse_args()
    say = Transcript()
    started = time.monotonic()
    genome, peaks = prepare(Path(args.cache), args.chroms, args.classes)
    # The held-out chromosomes: chr8 (test) and chr9 (valid), or the last one given (valid).
    held_out = ["--test-chroms", "chr8", "--valid-chroms", "chr9"] if {"chr8", "chr9"} <= set(args.chroms) else \
        ["--valid-chroms", args.chroms[-1]]
    largest = max(args.chroms, key=HG19_SIZES.get)
    size = sum(HG19_SIZES[c] for c in args.chroms)
    say(f"{time.strftime('%Y-%m-%d')}: synthetic genome of {len(args.chroms)} hg19 chromosome sizes ({size / 1e9:.2f} Gb, "
        f"plain FASTA), {len(peaks)} peak files; windows 1,000 bp, stride 300, --keep-negatives 0.25, "
        f"{' '.join(held_out)}; {args.threads} threads, load average {os.getloadavg()[0]:.1f} at the start (prepared in "
        f"{time.monotonic() - started:.0f} s, cached in {args.cache})")
    with tempfile.TemporaryDirectory(prefix="deepgmap-genome-scale-") as work:
        work = Path(work)
        tables, read_classes = {}, min(READ_GOAL_CLASSES, len(peaks))
        for n_classes in sorted({len(peaks), read_classes}, reverse=True):
            tables[n_classes] = work / f"windows.{n_classes}.tsv"
            seconds, peak, *_ = measured([BIN / "deepgmap-make-training-windows", "--genome", genome, "--peaks",
                                         *peaks[:n_classes], *held_out,
                                         "-p", args.threads, "-q", "-o", tables[n_classes]], "make-training-windows")
            on_disk = tables[n_classes].stat().st_size / GB
            goal = f"goal < 120 s and < 2 GB: {verdict(seconds < 120 and peak < 2)}" if n_classes == len(peaks) else ""
            say(f"make-training-windows, {n_classes} classes: {seconds:6.1f} s, peak {peak:5.2f} GB; table {on_disk:5.2f} GB "
                f"on disk  {goal}")
        for name, line_reader in (("read_peaks", False), ("the line-at-a-time reader", True)):
            seconds, peak, out, *_ = measured(peak_read_in_child(peaks, args.threads, line_reader), "peak files read")
            records, inside = int(out.split()[0]), float(out.split()[1])
            say(f"  peak files read by {name:>25}, {args.threads} threads: {records:,} records in {inside:5.1f} s = "
                f"{records / inside:10,.0f} records/s, peak {peak:5.2f} GB")
        say()
        for n_classes, path in tables.items():
            seconds, peak, out, *_ = measured(read_in_child(("deepgmap_core.windows", "read_windows_table"), path,
                                                            args.threads), "table read")
            rows, inside = int(out.split()[0]), float(out.split()[1])
            goal = f"goal >= 1,000,000 rows/s: {verdict(rows / inside >= 1e6)}" if n_classes == 100 else ""
            say(f"table read, {n_classes} classes, {args.threads} threads: {rows:,} rows in {inside:5.1f} s = "
                f"{rows / inside:10,.0f} rows/s, peak {peak:5.2f} GB ({peak / (path.stat().st_size / GB):.2f} x the "
                f"table on disk)  {goal}")
        head, rows = work / "windows.head.tsv", 0
        with open(tables[read_classes]) as source, open(head, "w") as target:
            for line in source:
                target.write(line)
                rows += not line.startswith("#")
                if rows == args.old_rows:
                    break
        for name, reader in (("the reader it replaced", ("test_windows_reader", "reference_read_windows_table")),
                             ("this reader, 1 thread", ("deepgmap_core.windows", "read_windows_table"))):
            seconds, peak, out, *_ = measured(read_in_child(reader, head), "table read")
            rows, inside = int(out.split()[0]), float(out.split()[1])
            say(f"  {name:>24}, first {rows:,} rows of the {read_classes}-class table: {rows / inside:10,.0f} rows/s, "
                f"peak {peak:5.2f} GB")
        say()
        table, model = tables[len(peaks)], work / "model.keras"
        (seconds, peak), (whole_seconds, whole_peak) = train_start_up(
            [BIN / "deepgmap-train-model", "--genome", genome, "--windows", table, "--width-scale", "0.05",
             "--epochs", "1", "--steps-per-epoch", "1", "--max-valid-windows", "2000", "--max-test-windows", "2000",
             "-p", args.threads, "-o", model])
        say(f"train-model start-up, {len(peaks)} classes (to the first step): {seconds:6.1f} s, peak {peak:5.2f} GB  "
            f"goal < 60 s and < 3 GB: {verdict(seconds < 60 and peak < 3)}")
        say(f"  the whole 1-step run (with the final scoring and calibration): {whole_seconds:6.1f} s, "
            f"peak {whole_peak:5.2f} GB")
        run = measured([BIN / "deepgmap-predict-bigwig", "--model", model, "--genome", genome, "--chroms", largest,
                        "-p", args.threads, "-q", "--outdir", work / "tracks"], "predict-bigwig", args.predict_minutes)
        seconds, peak, finished = run.seconds, run.peak, run.finished
        say(f"predict-bigwig, {largest} ({HG19_SIZES[largest] / 1e6:.0f} Mb), {len(peaks)} classes: {seconds:6.1f} s, "
            f"peak {peak:5.2f} GB  goal < 2 GB: {verdict(peak < 2)}" if finished else
            f"predict-bigwig, {largest} ({HG19_SIZES[largest] / 1e6:.0f} Mb), {len(peaks)} classes: stopped at the "
            f"--predict-minutes limit ({seconds:.0f} s), peak {peak:5.2f} GB by then  goal < 2 GB: "
            f"{'NOT MET' if peak >= 2 else 'not known (did not finish)'}")
    say(f"({time.monotonic() - started:.0f} s in all)")
    if args.results:
        command = "python benchmarks/genome_scale.py" + ("" if args.chroms == list(HG19_SIZES) else
                                                          f" --chroms {' '.join(args.chroms)}")
        write_section(args.results, "genome_scale", f"Genome scale: synthetic genome of hg19's sizes, {args.classes} classes",
                      command + f" --classes {args.classes} --results benchmarks/RESULTS.md", say.text())


if __name__ == "__main__":
    main()
