"""Every performance benchmark of the suite in one run, each with small arguments scaled to
--budget-minutes: windows (make-training-windows against bedtools), qc (FRiP and coverage
against deepTools), train (conv4-FRSS training against the GEMM peak), predict (shared trunk
against window-by-window prediction, bigWig writing against bare pyBigWig), variants
(score-variants against the model alone), attribute (each attribution method against the
model's forward pass, TF-MoDISco's time and memory) and predict_memory (predict-bigwig's peak
memory against chromosome length at 400 classes, beside the whole chromosome as one chunk),
threads (the cores predict-bigwig uses under -p 1, beside -p max) and scoring (AUROC, AUPRC and
peak thresholds of 400 classes against scikit-learn's per-class functions). Each benchmark measures its own
baseline in the same run and prints the ratio; its output is written, as printed, to a section of
benchmarks/RESULTS.md with the machine, versions, date and the command that regenerates it.
Then time_to_accuracy (training minutes to held-out CTCF AUROC 0.80/0.85/0.90 per recipe,
beside the GC and motif baselines), which writes its own section and learning-curve figure, and
genome_scale (make-training-windows, the table read, train-model's start-up and predict-bigwig on a
synthetic genome of hg19's sizes with 400 classes, about 20 minutes; chr20-22 only below the
default budget), which writes its own section too.

Scaling: the sizes below are for --budget-minutes 8 on 2 CPU cores and grow or shrink with it;
on a GPU the training benchmark runs full width with a large GEMM. time_to_accuracy trains each
of its three runs for 10/8 of --budget-minutes (the issue's 10 minutes at the default), so it
takes about 40 minutes of the default run.

Usage: python benchmarks/run_all.py [--budget-minutes 8]
"""

import argparse
import subprocess
import sys
import time

from paper import REPO, on_gpu, write_section


def commands(scale, gpu):
    """(name, arguments) per benchmark, for a budget `scale` times 8 minutes."""
    def sized(value, smallest=1):
        return str(max(smallest, int(value * scale)))

    train = ["--gemm-size", "8192", "--steps", "20", "--widths", "1.0", "0.25"] if gpu else \
        ["--steps", sized(2), "--widths", "1.0", "0.25", "--gemm-size", "2048"]
    return [("windows", ["--repeats", sized(1)]),
            ("qc", ["--repeats", sized(1)]),
            ("train", train),
            ("predict", ["--width", "1.0", "--length", sized(200_000, 20_000)]),
            ("variants", ["--records", sized(20_000, 2_000), "--small", sized(2_000, 200)]),
            ("attribute", ["--regions", sized(2_000, 200), "--ism-regions", sized(20, 4)]),
            ("predict_memory", ["--lengths", *(f"{length * scale:g}" for length in (10, 40))]),
            ("threads", ["--length", f"{3 * scale:g}"]),
            ("scoring", ["--windows", sized(160_000, 10_000)]),
            ("time_to_accuracy", ["--budget-minutes", f"{10 * scale:g}"]),
            ("genome_scale", [] if scale >= 1 else ["--chroms", "chr20", "chr21", "chr22"])]


# Benchmarks that write their own section of --results (with a figure), not their output as printed.
OWN_SECTION = {"time_to_accuracy", "genome_scale"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-minutes", type=float, default=8)
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"))
    args = parser.parse_args()
    scale, gpu = args.budget_minutes / 8, on_gpu()
    print(f"budget {args.budget_minutes:g} min: sizes x{scale:g} of the 8-minute set"
          f"{', GPU settings for train.py' if gpu else ''}", flush=True)
    for name, arguments in commands(scale, gpu):
        if name in OWN_SECTION:
            arguments = [*arguments, "--results", args.results]
        command = ["python", f"benchmarks/{name}.py", *arguments]
        started = time.monotonic()
        run = subprocess.run([sys.executable, *command[1:]], cwd=REPO, capture_output=True, text=True)
        output = run.stdout if run.returncode == 0 else run.stdout + f"\nFAILED (exit {run.returncode}):\n" + \
            "\n".join(run.stderr.splitlines()[-10:])
        output += f"\n({time.monotonic() - started:.0f} s)"
        print(f"== {' '.join(command)}\n{output}", flush=True)
        if name not in OWN_SECTION:
            write_section(args.results, f"bench_{name}", f"benchmarks/{name}.py", " ".join(command), output)


if __name__ == "__main__":
    main()
