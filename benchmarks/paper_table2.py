"""The paper's Table 2 on real data: conv4-FRSS trained on hg19 chr20 CTCF windows of 1 kb made
every 100, 200, 300, 400 and 500 bp, each shown the same number of training samples; the AUPRC
on the held-out real 1 Mb of chr22 next to the AUPRC on the training chromosome (predict-bigwig
--evaluate's overfitting test, deepgmap_core.evaluation). A large gap means the model memorised
the overlapping training windows.

The paper's DeepSEA-style data (a 200 bp labelled window inside 400 bp flanks) is not run:
make-training-windows labels the whole window it writes and has no flank option.

Fitting the budget: on a CPU conv4-FRSS is scaled to --width (default 0.1) and the number of
samples is what the budget leaves after timing the model; on a GPU the full width runs.
Adam 1e-3, batches of 32, 25% of train negatives kept, one epoch per stride (chr22 never picks a
model).

Usage: python benchmarks/paper_table2.py [--budget-minutes 8] [--width 0.1]
"""

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from paper import (Transcript, genome_and_peaks, make_windows, on_gpu, paper_parser, seconds_per_20_updates,
                   write_section)
from deepgmap_core.evaluation import evaluate, negative_weights
from deepgmap_core.genome import Genome
from deepgmap_core.training import TrainSettings, mean_of, split_rows, train_model
from deepgmap_core.windows import read_windows_table

STRIDES, WINDOW, KEEP_NEGATIVES = (100, 200, 300, 400, 500), 1000, 0.25
BATCH, LEARNING_RATE, RUN_OVERHEAD_S, EVALUATED = 32, 1e-3, 15.0, 4000


def chance_auprc(table, rows):
    """The AUPRC of a random ranking: the share of positives (train negatives weighted), mean over classes."""
    weights = negative_weights(table, rows)
    return float(np.mean(weights @ table.labels[rows] / weights.sum()))


def main():
    parser = paper_parser(__doc__, 8)
    args = parser.parse_args()
    started = time.monotonic()
    width = 1.0 if on_gpu() else args.width
    say = Transcript()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        genome_path, peaks = genome_and_peaks(work)
        tables = {stride: read_windows_table(make_windows(work, genome_path, peaks, WINDOW, stride, KEEP_NEGATIVES))
                  for stride in STRIDES}
        with Genome(str(genome_path)) as genome:
            seconds, parameters = seconds_per_20_updates(genome, tables[300], split_rows(tables[300], "train", 0, 0),
                                                         "conv4-frss", width)
            left = args.budget_minutes * 60 - (time.monotonic() - started) - RUN_OVERHEAD_S * len(STRIDES)
            steps = max(10, math.floor(left / (seconds / 2000) / len(STRIDES) / BATCH))
            say(f"budget {args.budget_minutes:g} min on {'a GPU' if on_gpu() else 'the CPU'}: conv4-frss at width "
                f"scale {width:g} (the paper: 1.0; {parameters:,} parameters, {seconds:.2f} s per 20 updates of 100), "
                f"{steps * BATCH:,} training samples per stride ({steps} updates of {BATCH}, Adam {LEARNING_RATE:g}); "
                f"1 kb windows, {KEEP_NEGATIVES:.0%} of train negatives kept; AUPRCs on at most {EVALUATED:,} "
                f"windows per split (a seeded subset), train negatives weighted 1/{KEEP_NEGATIVES:g}")
            say("DeepSEA-style 200 bp windows with 400 bp flanks: not run (make-training-windows has no flanks)")
            say()
            say(f"{'stride':>6} {'train windows':>13} {'passes':>6} {'chr22 AUROC':>11} {'chr22 AUPRC':>11} "
                f"{'chr20 AUPRC':>11} {'gap':>7}   random AUPRC chr22 / chr20")
            for stride, table in tables.items():
                settings = TrainSettings(model="conv4-frss", width_scale=width, epochs=1, steps_per_epoch=steps,
                                         batch_size=BATCH, learning_rate=LEARNING_RATE, seed=1, patience=0,
                                         max_valid_windows=500, loader_threads=2)
                model, _ = train_model(genome, table, settings, str(work / f"stride{stride}.keras"), " ".join(sys.argv))
                results = evaluate(model, genome, table, max_windows=EVALUATED, seed=1, threads=2)
                held_out, overfitting = results["splits"]["valid"], results["overfitting"]
                n_train = int((table.splits == "train").sum())
                train_rows = results["predictions"]["train"][0]
                on_chrom = train_rows[table.chroms[train_rows] == overfitting["train_chrom"]]
                say(f"{stride:>6} {n_train:>13,} {steps * BATCH / n_train:>6.2f} {mean_of(held_out, 'auroc'):>11.3f} "
                    f"{mean_of(held_out, 'auprc'):>11.3f} {mean_of(overfitting['train'], 'auprc'):>11.3f} "
                    f"{overfitting['gap']:>+7.3f}   {chance_auprc(table, results['predictions']['valid'][0]):.3f} / "
                    f"{chance_auprc(table, on_chrom):.3f}")
        say(f"total {(time.monotonic() - started) / 60:.1f} min")
    write_section(args.results, "paper_table2", "Paper Table 2: window stride and overfitting, conv4-FRSS",
                  f"python benchmarks/paper_table2.py --budget-minutes {args.budget_minutes:g} --width {args.width:g}",
                  say.text())


if __name__ == "__main__":
    main()
