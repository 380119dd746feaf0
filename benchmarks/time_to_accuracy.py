"""Time to accuracy: minutes of training on this machine for conv4-FRSS to reach a held-out CTCF
AUROC of 0.80, 0.85 and 0.90 under the paper's training recipe and the suite's default one
(deepgmap_core.recipes), and for other (model, recipe) pairs named with --runs; beside them, in
the same table, the baselines that need no training on the same held-out windows: GC content,
the best JASPAR 2024 motif, chance.

Data: hg19 chr20 CTCF regions tiled as make-training-windows does by default (1 kb windows
every 300 bp, summit rule, 25% of train negatives kept); the real 1 Mb of chr22 (20-21 Mb,
less the ENCODE blacklist) held out as the valid split, all of its windows scored.

Each run: train-model's library with no early stopping and --max-minutes BUDGET, at width scale
--width (a GPU runs 1.0). Its epochs are cut short, S steps each, so that chr22 is scored about
every --eval-seconds of training: S comes from the samples/s of a calibration run of the same
model and recipe (two epochs of 10 steps; the second's rate, without the first's tracing).
"Minutes" are training minutes as the run counts them for --max-minutes (scoring chr22 not
included); the default recipe's cosine decay runs over the budget, so a longer budget changes
its whole curve. A threshold is reached at the first scoring at or above it.

Writes the section time_to_accuracy of --results and the learning curves (AUROC against
training minutes, GC and motif baselines as horizontal lines) as time_to_accuracy.png beside it.

Usage: python benchmarks/time_to_accuracy.py [--budget-minutes 10]
           [--runs conv4-frss:paper conv4-frss:default conv3-frss-bn:default] [--eval-seconds 45]
"""

import argparse
import sys
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from paper import (BASELINES_LEGEND, REPO, Transcript, genome_and_peaks, held_out_baselines, make_windows, on_gpu,
                   write_section)
from deepgmap_core.errors import InputError
from deepgmap_core.fileio import atomic_output
from deepgmap_core.genome import Genome
from deepgmap_core.models import architecture
from deepgmap_core.recipes import recipe
from deepgmap_core.settings import TrainSettings
from deepgmap_core.training import train_model
from deepgmap_core.windows import read_windows_table

THRESHOLDS = (0.80, 0.85, 0.90)
DEFAULT_RUNS = ("conv4-frss:paper", "conv4-frss:default", "conv3-frss-bn:default")
WINDOW, STRIDE, KEEP_NEGATIVES = 1000, 300, 0.25   # make-training-windows' defaults
SEED, CALIBRATION_STEPS, CALIBRATION_VALID = 1, 10, 200
SECTION, FIGURE = "time_to_accuracy", "time_to_accuracy.png"
WIDTH, EVAL_SECONDS = 0.25, 45
CELL = 22   # characters of a time-to-threshold column


def model_and_recipe(text):
    """'MODEL:RECIPE' -> (model, recipe), both checked against the suite's names."""
    model, _, recipe_name = text.partition(":")
    try:
        architecture(model)
        recipe(recipe_name)
    except InputError as error:
        raise argparse.ArgumentTypeError(f"{text}: {error}") from None
    return model, recipe_name


def settings_for(model, recipe_name, width, **overrides):
    return TrainSettings(model=model, recipe=recipe_name, width_scale=width, patience=0, seed=SEED, loader_threads=2,
                         **overrides)


def samples_per_second(genome, table, model, recipe_name, width, work):
    """Training windows per second of `model` under `recipe_name`, from the second of two short epochs."""
    settings = settings_for(model, recipe_name, width, epochs=2, steps_per_epoch=CALIBRATION_STEPS,
                            max_valid_windows=CALIBRATION_VALID)
    _, info = train_model(genome, table, settings, str(work / "calibration.keras"), "calibration")
    return info.state["history"][-1]["samples_per_second"]


def first_reaching(curve, threshold):
    """(minutes, updates) of the first scoring at or above `threshold`, or None."""
    return next(((minutes, updates) for minutes, updates, auroc, _ in curve if auroc >= threshold), None)


def short_name(motif_score):
    return motif_score["method"].split(":")[1]   # motif:C055:CTCF:C2H2_ZF -> C055


def learning_curves_png(path, curves, baselines, budget_minutes):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for run, curve in curves.items():
        axes.plot([c[0] for c in curve], [c[2] for c in curve], "o-", markersize=3, label=run)
    for label, score, style in (("GC content", baselines["gc"], ":"),
                                (f"motif {short_name(baselines['motif'])}", baselines["motif"], "--")):
        axes.axhline(score["auroc"], color="grey", linestyle=style, label=f"{label} ({score['auroc']:.3f})")
    for threshold in THRESHOLDS:
        axes.axhline(threshold, color="lightgrey", linewidth=0.8)
    axes.set(xlabel="training minutes", ylabel="held-out chr22 CTCF AUROC", xlim=(0, budget_minutes),
             ylim=(0.45, 1.0), title="Time to accuracy: chr20 CTCF 1 kb windows -> chr22")
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    with atomic_output(str(path)) as stream:
        figure.savefig(stream, format="png", dpi=100)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-minutes", type=float, default=10, help="training minutes per run (default: 10)")
    parser.add_argument("--width", type=float, default=WIDTH,
                        help=f"width scale of the models on a CPU (default: {WIDTH:g}; a GPU runs 1.0)")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"),
                        help=f"markdown file whose section {SECTION} is written; {FIGURE} goes beside it "
                             "(default: benchmarks/RESULTS.md)")
    parser.add_argument("--runs", nargs="+", type=model_and_recipe, default=[model_and_recipe(r) for r in DEFAULT_RUNS],
                        metavar="MODEL:RECIPE", help="(model, recipe) pairs to train, one run each "
                                                     f"(default: {' '.join(DEFAULT_RUNS)})")
    parser.add_argument("--eval-seconds", type=float, default=EVAL_SECONDS,
                        help="training seconds between two scorings of the held-out windows, which sets the "
                             f"epoch length (default: {EVAL_SECONDS:g})")
    parser.add_argument("--keep-models", metavar="DIR",
                        help="copy each run's best model there as MODEL.RECIPE.keras (default: not kept)")
    args = parser.parse_args()
    if not (args.budget_minutes > 0 and args.eval_seconds > 0):
        parser.error("--budget-minutes and --eval-seconds must be > 0")
    started = time.monotonic()
    width = 1.0 if on_gpu() else args.width
    say = Transcript()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        genome_path, peaks = genome_and_peaks(work)
        table = read_windows_table(make_windows(work, genome_path, peaks, WINDOW, STRIDE, KEEP_NEGATIVES))
        valid_rows = np.flatnonzero(table.splits == "valid")
        with Genome(str(genome_path)) as genome:
            baselines = held_out_baselines(genome, table, valid_rows, SEED)
            say(f"budget {args.budget_minutes:g} training minutes per run on {'a GPU' if on_gpu() else 'the CPU'}, "
                f"width scale {width:g}, seed {SEED}; windows {WINDOW} bp / stride {STRIDE}, "
                f"{KEEP_NEGATIVES:.0%} of train negatives kept (make-training-windows' defaults)")
            say(f"train: chr20, {int((table.splits == 'train').sum()):,} windows; held out: chr22:20-21 Mb, "
                f"{len(valid_rows):,} windows, {int(table.labels[valid_rows].sum())} CTCF-positive, all scored after "
                f"every epoch (about every {args.eval_seconds:g} s of training)")
            curves, rows = {}, []
            for model, recipe_name in args.runs:
                run = f"{model}:{recipe_name}"
                rate = samples_per_second(genome, table, model, recipe_name, width, work)
                batch = settings_for(model, recipe_name, width).batch
                steps = max(1, round(args.eval_seconds * rate / batch))
                settings = settings_for(model, recipe_name, width, epochs=1000, steps_per_epoch=steps,
                                        max_minutes=args.budget_minutes)
                trained, info = train_model(genome, table, settings, str(work / f"{model}.{recipe_name}.keras"),
                                                " ".join(sys.argv))
                if args.keep_models:
                    os.makedirs(args.keep_models, exist_ok=True)
                    shutil.copy(work / f"{model}.{recipe_name}.keras", args.keep_models)
                curves[run] = [(r["minutes_total"], r["updates"], r["valid_mean_auroc"], r["valid_mean_auprc"])
                               for r in info.state["history"]]
                rows.append((run, trained.count_params(), batch, steps, rate))
        learning_curves_png(Path(args.results).with_name(FIGURE), curves, baselines, args.budget_minutes)
    say()
    reached = "".join(f"{f'AUROC {t:.2f} at':>{CELL}}" for t in THRESHOLDS)
    say(f"{'run (model:recipe)':<24} {'parameters':>10} {'batch':>5} {'steps/eval':>10} {'samples/s':>9}{reached}"
        f"{'best AUROC (at)':>24} {'AUPRC':>6} {'vs motif':>8}")
    motif = baselines["motif"]
    for run, parameters, batch, steps, rate in rows:
        curve = curves[run]
        reached_at = [first_reaching(curve, t) for t in THRESHOLDS]
        cells = "".join(f"{f'{at[0]:.1f} min ({at[1]:,} upd)' if at else 'not reached':>{CELL}}" for at in reached_at)
        minutes, _, best, auprc = max(curve, key=lambda c: c[2])
        say(f"{run:<24} {parameters:>10,} {batch:>5} {steps:>10} {rate:>9.0f}{cells}"
            f"{f'{best:.3f} ({minutes:.1f} min)':>24} {auprc:>6.3f} {best - motif['auroc']:>+8.3f}")
    no_times = f"{'-':>{CELL}}" * len(THRESHOLDS)
    for label, score in (("GC content", baselines["gc"]), (f"motif {short_name(motif)}", motif),
                         ("chance", baselines["chance"])):
        say(f"{label:<24} {'-':>10} {'-':>5} {'-':>10} {'-':>9}{no_times}"
            f"{score['auroc']:>24.3f} {score['auprc']:>6.3f} {score['auroc'] - motif['auroc']:>+8.3f}")
    say(f"{BASELINES_LEGEND} (motif {motif['method'].removeprefix('motif:')})")
    say("reached at: training minutes and optimiser updates at the first chr22 scoring at or above the AUROC; "
        "best AUROC: the highest of any scoring (AUPRC at that scoring); vs motif: that AUROC less the motif's")
    say()
    say("learning curves (training minutes: chr22 AUROC):")
    for run, curve in curves.items():
        say(f"  {run:<24} " + " ".join(f"{m:.1f}:{a:.3f}" for m, _, a, _ in curve))
    say(f"total {(time.monotonic() - started) / 60:.1f} min")
    command = f"python benchmarks/time_to_accuracy.py --budget-minutes {args.budget_minutes:g}"
    if [f"{m}:{r}" for m, r in args.runs] != list(DEFAULT_RUNS):
        command += " --runs " + " ".join(f"{m}:{r}" for m, r in args.runs)
    if args.eval_seconds != EVAL_SECONDS:
        command += f" --eval-seconds {args.eval_seconds:g}"
    if args.width != WIDTH:
        command += f" --width {args.width:g}"
    write_section(args.results, SECTION, "Time to accuracy: chr20 CTCF 1 kb windows -> chr22, per training recipe",
                  command, say.text(), figure=FIGURE)


if __name__ == "__main__":
    main()
