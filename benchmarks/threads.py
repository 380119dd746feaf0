"""Benchmark: cores used by predict-bigwig under -p/--threads (issue 15: a Galaxy job given N
slots must use N cores, TensorFlow's own pools included).

A random chromosome of --length Mb and an untrained conv4-FRSS (width --width): predict-bigwig
with -p 1, then, as the baseline in the same run, with every available core (-p max, what
TensorFlow takes when nothing bounds it). Cores used = CPU seconds (user + system, all threads)
over wall seconds of the whole command, start-up included.

Usage: python benchmarks/threads.py [--length 3] [--width 0.25]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from deepgmap_core.cli.common import available_cores


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=float, default=3, help="chromosome length in Mb")
    parser.add_argument("--width", type=float, default=0.25)
    args = parser.parse_args()
    from genome_scale import measured  # after argparse: --help stays fast
    from paper import save_untrained_model, write_random_chromosome

    length = int(args.length * 1e6)
    windows = (length - 1000) // 300 + 1
    print(f"{time.strftime('%Y-%m-%d')}: predict-bigwig, conv4-frss width {args.width} (untrained), "
          f"{args.length:g} Mb = {windows:,} windows, {available_cores()} cores available", flush=True)
    with tempfile.TemporaryDirectory(prefix="deepgmap-threads-") as work:
        work = Path(work)
        model, genome = work / "model.keras", work / "chrS.fa"
        save_untrained_model(model, ["a", "b"], args.width)
        write_random_chromosome(genome, length, np.random.default_rng(0))
        for threads in ("1", "max"):
            run = measured([Path(sys.executable).parent / "deepgmap-predict-bigwig", "--model", model, "--genome",
                            genome, "-p", threads, "-q", "--outdir", work / f"tracks{threads}"], "predict-bigwig")
            wall, cpu = run.seconds, run.cpu_seconds
            label = "-p 1" if threads == "1" else "-p max (baseline: unbounded)"
            print(f"{label:>30}: {wall:6.1f} s wall, {cpu:6.1f} s CPU = {cpu / wall:4.2f} cores used, "
                  f"{windows / wall:7,.0f} windows/s", flush=True)


if __name__ == "__main__":
    main()
