"""Benchmark: predict-bigwig's peak memory against chromosome length with many classes (issue 18).

Random chromosomes of --lengths Mb (plain FASTA, written to a temporary folder) and an untrained
conv4-FRSS of --classes outputs (width --width): predict-bigwig on each chromosome, timed with
its peak memory (/usr/bin/time), a chunk of windows at a time (predict.CHUNK_VALUES, as shipped)
and, as the baseline in the same run, the whole chromosome as one chunk (the behaviour before:
every window's predictions and every bin held at once). The chunked peak should stay flat as the
chromosome grows; the baseline's grows with windows x classes.

Usage: python benchmarks/predict_memory.py [--lengths 5 10 20] [--classes 400] [--width 0.05]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from genome_scale import measured

# Runs predict-bigwig with predict.CHUNK_VALUES set (argv[1]) in a fresh process.
CHILD = ("import sys, deepgmap_core.predict as p; p.CHUNK_VALUES = int(sys.argv[1]); "
         "from deepgmap_core.cli.predict_bigwig import main; sys.exit(main(sys.argv[2:]))")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=float, nargs="+", default=[5, 10, 20], help="chromosome lengths in Mb")
    parser.add_argument("--classes", type=int, default=400)
    parser.add_argument("--width", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from deepgmap_core.predict import CHUNK_VALUES  # after argparse: --help stays fast
    from paper import save_untrained_model, write_random_chromosome

    rng = np.random.default_rng(0)
    print(f"{time.strftime('%Y-%m-%d')}: conv4-frss width {args.width}, {args.classes} classes "
          f"(untrained), windows 1,000 bp every 300 bp", flush=True)
    with tempfile.TemporaryDirectory(prefix="deepgmap-predict-memory-") as work:
        work = Path(work)
        model = work / "model.keras"
        save_untrained_model(model, [f"class{i}" for i in range(args.classes)], args.width)
        for megabases in args.lengths:
            length = int(megabases * 1e6)
            genome = work / f"chr{megabases:g}.fa"
            write_random_chromosome(genome, length, rng)
            windows = (length - 1000) // 300 + 1
            for name, chunk_values in (("chunks", CHUNK_VALUES), ("whole chromosome", 1 << 62)):
                seconds, peak, *_ = measured([sys.executable, "-c", CHILD, chunk_values, "--model", model,
                                              "--genome", genome, "-p", args.threads, "-q", "--outdir",
                                              work / "tracks"], "predict-bigwig")
                print(f"{megabases:5g} Mb, {windows:>9,} windows x {args.classes} classes "
                      f"({windows * args.classes * 4 / 2 ** 30:5.2f} GB as float32), {name:>16}: {seconds:6.1f} s, "
                      f"peak {peak:5.2f} GB", flush=True)
            genome.unlink()


if __name__ == "__main__":
    main()
