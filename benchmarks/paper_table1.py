"""The paper's Table 1 on real data: the eight models (and the suite's conv3-frss-bn, an addition)
trained on hg19 chr20 CTCF windows and
scored on the real 1 Mb of chr22 (20-21 Mb; the rest of chr22 is N, and the ENCODE blacklist
covers 40% of the piece). Every model gets the same width scale, windows, number of training
samples and seeds; the table gives AUROC and AUPRC on chr22 (mean and spread over seeds), the
seconds per 20 updates of 100 windows, and the parameters; below the models, the baselines that
need no training on the same chr22 windows: GC content, the best JASPAR 2024 motif, chance.

Fitting the budget: on a CPU the models are scaled to --width (default 0.1) and the number of
samples is what the budget leaves after timing each model; on a GPU the full widths run. The
data are 200 bp windows every 100 bp with 8% of the negatives kept, trained with the default
recipe (He initialisation, warm-up and cosine decay, shift and strand augmentation) at a peak
Adam rate of 1e-3 in batches of 32: on 1 kb windows these models barely learn CTCF within a few
thousand CPU samples. Each run is one epoch (chr22 is
only scored at its end, so it never picks a model).

Usage: python benchmarks/paper_table1.py [--budget-minutes 15] [--seeds 3] [--width 0.1]
"""

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from paper import (BASELINES_LEGEND, Transcript, genome_and_peaks, held_out_baselines, make_windows, on_gpu,
                   paper_parser, seconds_per_20_updates, write_section)
from deepgmap_core.genome import Genome
from deepgmap_core.models import model_names
from deepgmap_core.batching import split_rows
from deepgmap_core.scoring import mean_of
from deepgmap_core.settings import TrainSettings
from deepgmap_core.training import train_model
from deepgmap_core.windows import read_windows_table

BATCH, LEARNING_RATE, RUN_OVERHEAD_S = 32, 1e-3, 6.0


def mean_spread(values):
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def main():
    parser = paper_parser(__doc__, 15)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=model_names())
    args = parser.parse_args()
    started = time.monotonic()
    width = 1.0 if on_gpu() else args.width
    seeds = list(range(1, args.seeds + 1))
    say = Transcript()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        table = read_windows_table(make_windows(work, *genome_and_peaks(work), window=200, stride=100,
                                                keep_negatives=0.08))
        with Genome(str(work / "genome.fa")) as genome:
            train_rows = split_rows(table, "train", 0, 0)
            timing = {name: seconds_per_20_updates(genome, table, train_rows, name, width) for name in args.models}
            baselines = held_out_baselines(genome, table, np.flatnonzero(table.splits == "valid"))
            left = args.budget_minutes * 60 - (time.monotonic() - started) - RUN_OVERHEAD_S * len(timing) * len(seeds)
            per_sample = sum(seconds / 2000 for seconds, _ in timing.values()) * len(seeds)
            steps = max(10, math.floor(left / per_sample / BATCH))
            say(f"budget {args.budget_minutes:g} min on {'a GPU' if on_gpu() else 'the CPU'}: width scale {width:g} "
                f"(the paper: 1.0), {steps * BATCH:,} training samples per run ({steps} updates of {BATCH}, "
                f"default recipe, Adam {LEARNING_RATE:g}), {len(seeds)} seeds; windows 200 bp / stride 100 (the paper: 1 kb / 300), "
                f"8% of train negatives kept")
            say(f"train: chr20, {len(train_rows):,} windows; held out: chr22:20-21 Mb, "
                f"{int((table.splits == 'valid').sum()):,} windows, {int(table.labels[table.splits == 'valid'].sum())} "
                f"CTCF-positive")
            scores = {name: [] for name in args.models}
            for name in args.models:
                for seed in seeds:
                    settings = TrainSettings(model=name, width_scale=width, epochs=1, steps_per_epoch=steps,
                                             batch_size=BATCH, learning_rate=LEARNING_RATE, seed=seed, patience=0,
                                             loader_threads=2)
                    _, info = train_model(genome, table, settings, str(work / f"{name}.{seed}.keras"),
                                              " ".join(sys.argv))
                    valid = info.final_metrics["valid"]
                    scores[name].append((mean_of(valid, "auroc"), mean_of(valid, "auprc")))
        say()
        say(f"{'model':<16} {'chr22 AUROC':>15} {'chr22 AUPRC':>15} {'s / 20x100':>11} {'parameters':>11}")
        for name in args.models:
            auroc, auprc = zip(*scores[name])
            seconds, parameters = timing[name]
            say(f"{name:<16} {mean_spread(auroc):>15} {mean_spread(auprc):>15} {seconds:>11.2f} {parameters:>11,}")
        motif = baselines["motif"]["method"].split(":")[1]   # motif:C055:CTCF:C2H2_ZF -> C055
        for label, score in (("GC content", baselines["gc"]), (f"motif {motif}", baselines["motif"]),
                             ("chance", baselines["chance"])):
            say(f"{label:<16} {score['auroc']:>15.3f} {score['auprc']:>15.3f} {'-':>11} {'-':>11}")
        say(f"{BASELINES_LEGEND} (motif {baselines['motif']['method'].removeprefix('motif:')})")
        say()
        say(f"mean ± standard deviation over seeds {', '.join(map(str, seeds))}; per seed (AUROC/AUPRC):")
        for name in args.models:
            say(f"  {name:<16} " + "  ".join(f"{a:.3f}/{p:.3f}" for a, p in scores[name]))
        say(f"total {(time.monotonic() - started) / 60:.1f} min")
    write_section(args.results, "paper_table1", "Paper Table 1: eight models, chr20 CTCF -> chr22",
                  f"python benchmarks/paper_table1.py --budget-minutes {args.budget_minutes:g} --seeds {args.seeds} "
                  f"--width {args.width:g}" + ("" if args.models == model_names() else f" --models {' '.join(args.models)}"),
                  say.text())


if __name__ == "__main__":
    main()
