"""The paper's Table 2 on real data: conv4-FRSS trained on hg19 chr20 CTCF windows of 1 kb made
every 100, 200, 300, 400 and 500 bp, each shown the same number of training samples; the AUPRC
on the held-out real 1 Mb of chr22 next to the AUPRC on the training chromosome (predict-bigwig
--evaluate's overfitting test, deepgmap_core.evaluation). A large gap means the model memorised
the overlapping training windows. Beside them, the chr22 AUROC of two baselines that need no
training, on the same windows: GC content and the best JASPAR 2024 motif.

The last row is the paper's DeepSEA-style data: 200 bp labelled windows every 200 bp, each with
400 bp of sequence on both sides (make-training-windows --window 200 --flank 400), so the model
sees 1 kb as in the other rows.

Fitting the budget: on a CPU conv4-FRSS is scaled to --width (default 0.1) and the number of
samples is what the budget leaves after timing the model; on a GPU the full width runs.
The default recipe (He initialisation, warm-up and cosine decay, shift and strand augmentation)
at a peak Adam rate of 1e-3 in batches of 32, 25% of train negatives kept, one epoch per stride (chr22 never picks a
model).

Usage: python benchmarks/paper_table2.py [--budget-minutes 8] [--width 0.1]
"""

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from paper import (BASELINES_LEGEND, Transcript, by_method, genome_and_peaks, jaspar_motifs, make_windows, on_gpu,
                   paper_parser, seconds_per_20_updates, write_section)
from deepgmap_core.evaluation import evaluate, negative_weights
from deepgmap_core.genome import Genome
from deepgmap_core.batching import split_rows
from deepgmap_core.scoring import mean_of
from deepgmap_core.settings import TrainSettings
from deepgmap_core.training import train_model
from deepgmap_core.windows import read_windows_table

# (labelled window, stride, flank): the paper's strides over 1 kb windows, then DeepSEA's layout.
LAYOUTS = [(1000, stride, 0) for stride in (100, 200, 300, 400, 500)] + [(200, 200, 400)]
KEEP_NEGATIVES = 0.25
# Overhead per run: 15 s, and 8 s for the baselines (a motif chosen on 2,000 train windows, then scanned).
BATCH, LEARNING_RATE, RUN_OVERHEAD_S, EVALUATED = 32, 1e-3, 23.0, 4000


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
        tables = {layout: read_windows_table(make_windows(work, genome_path, peaks, layout[0], layout[1],
                                                          KEEP_NEGATIVES, flank=layout[2]))
                  for layout in LAYOUTS}
        motifs = jaspar_motifs()
        with Genome(str(genome_path)) as genome:
            paper_best = tables[(1000, 300, 0)]
            seconds, parameters = seconds_per_20_updates(genome, paper_best, split_rows(paper_best, "train", 0, 0),
                                                         "conv4-frss", width)
            left = args.budget_minutes * 60 - (time.monotonic() - started) - RUN_OVERHEAD_S * len(LAYOUTS)
            steps = max(10, math.floor(left / (seconds / 2000) / len(LAYOUTS) / BATCH))
            say(f"budget {args.budget_minutes:g} min on {'a GPU' if on_gpu() else 'the CPU'}: conv4-frss at width "
                f"scale {width:g} (the paper: 1.0; {parameters:,} parameters, {seconds:.2f} s per 20 updates of 100), "
                f"{steps * BATCH:,} training samples per stride ({steps} updates of {BATCH}, default recipe, Adam {LEARNING_RATE:g}); "
                f"1 kb of sequence per sample, {KEEP_NEGATIVES:.0%} of train negatives kept; AUPRCs on at most "
                f"{EVALUATED:,} windows per split (a seeded subset), train negatives weighted 1/{KEEP_NEGATIVES:g}")
            say()
            say(f"{'labelled window / stride':>26} {'train windows':>13} {'passes':>6} {'chr22 AUROC':>11} "
                f"{'chr22 AUPRC':>11} {'chr20 AUPRC':>11} {'gap':>7} {'GC AUROC':>8} {'motif AUROC':>11}   "
                f"random AUPRC chr22 / chr20")
            chosen = set()
            for (window, stride, flank), table in tables.items():
                settings = TrainSettings(model="conv4-frss", width_scale=width, epochs=1, steps_per_epoch=steps,
                                         batch_size=BATCH, learning_rate=LEARNING_RATE, seed=1, patience=0,
                                         max_valid_windows=500, loader_threads=2)
                name = f"w{window}s{stride}f{flank}"
                model, _ = train_model(genome, table, settings, str(work / f"{name}.keras"), " ".join(sys.argv))
                results = evaluate(model, genome, table, max_windows=EVALUATED, seed=1, threads=2, known_motifs=motifs)
                baselines = by_method(results["baselines"]["valid"])
                chosen.add(baselines["motif"]["method"].removeprefix("motif:"))
                held_out, overfitting = results["splits"]["valid"], results["overfitting"]
                n_train = int((table.splits == "train").sum())
                train_rows = results["predictions"]["train"][0]
                on_chrom = train_rows[table.chroms[train_rows] == overfitting["train_chrom"]]
                layout = f"{window} bp{f' + 2x{flank} flanks' if flank else ''} / {stride}"
                say(f"{layout:>26} {n_train:>13,} {steps * BATCH / n_train:>6.2f} {mean_of(held_out, 'auroc'):>11.3f} "
                    f"{mean_of(held_out, 'auprc'):>11.3f} {mean_of(overfitting['train'], 'auprc'):>11.3f} "
                    f"{overfitting['gap']:>+7.3f} {baselines['gc']['auroc']:>8.3f} "
                    f"{baselines['motif']['auroc']:>11.3f}   "
                    f"{chance_auprc(table, results['predictions']['valid'][0]):.3f} / "
                    f"{chance_auprc(table, on_chrom):.3f}")
        say(f"{BASELINES_LEGEND} (motif {', '.join(sorted(chosen))}); random AUPRC = chance")
        say(f"total {(time.monotonic() - started) / 60:.1f} min")
    write_section(args.results, "paper_table2", "Paper Table 2: window stride and overfitting, conv4-FRSS",
                  f"python benchmarks/paper_table2.py --budget-minutes {args.budget_minutes:g} --width {args.width:g}",
                  say.text())


if __name__ == "__main__":
    main()
