"""Shared by the paper benchmarks: the real hg19 data (chr20 to train, the real 1 Mb of chr22
held out), windows through make-training-windows, training through train-model's library,
the budget, the baselines that need no training (GC content, the best JASPAR 2024 motif,
chance) on the held-out windows, and writing a section of benchmarks/RESULTS.md."""

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # as deepgmap-train-model runs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from deepgmap_core.backend import accelerator, configure_determinism, package_versions  # noqa: E402
from deepgmap_core.training import TrainBatches, compile_model  # noqa: E402
from deepgmap_core.models.build import build_model  # noqa: E402
from deepgmap_core.baselines import MOTIF_METHOD, baseline_scores  # noqa: E402
from deepgmap_core.motifs import read_motif_db  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "hg19"
JASPAR = DATA.parent / "motifs" / "JASPAR2024_CORE_clusters.meme"
BIN = Path(sys.executable).parent


def on_gpu():
    return accelerator().startswith("GPU")


def save_untrained_model(path, class_names, width):
    """An untrained conv4-FRSS model file (1 kb windows, weights from seed 0) for timing prediction."""
    import keras

    from deepgmap_core.models.files import ModelInfo, save_model

    keras.utils.set_random_seed(0)
    save_model(build_model("conv4-frss", len(class_names), 1000, width), str(path),
               ModelInfo(list(class_names), 1000, "conv4-frss", "AGCT", width_scale=width))


def write_random_chromosome(path, length, rng):
    """A FASTA of one chromosome, chrS, of `length` uniformly random bases."""
    bases = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, length)].tobytes()
    Path(path).write_bytes(b">chrS\n" + b"\n".join(bases[i:i + 80] for i in range(0, length, 80)) + b"\n")


def genome_and_peaks(work, data=DATA):
    """chr20 and chr22 in one plain FASTA, and the CTCF regions of both, under `work`."""
    genome, peaks = work / "genome.fa", work / "CTCF.bed"
    if not genome.exists():
        with open(genome, "wb") as out:
            for chrom in ("chr20", "chr22"):
                subprocess.run(["gzip", "-dc", str(data / f"{chrom}.fa.gz")], stdout=out, check=True)
    peaks.write_bytes((data / "CTCF.chr20.bed").read_bytes() + (data / "CTCF.chr22.bed").read_bytes())
    return genome, peaks


def make_windows(work, genome, peaks, window, stride, keep_negatives, data=DATA, flank=0):
    """chr20 train, chr22 (its real piece; the rest is N) held out as the valid split."""
    out = work / f"windows.w{window}.s{stride}.f{flank}.tsv"
    subprocess.run([str(BIN / "deepgmap-make-training-windows"), "--genome", str(genome), "--peaks", str(peaks),
                    "--names", "CTCF", "--blacklist", str(data / "hg19-blacklist.v2.bed"), "--valid-chroms", "chr22",
                    "--window", str(window), "--stride", str(stride), "--flank", str(flank),
                    "--keep-negatives", str(keep_negatives),
                    "--seed", "1", "-o", str(out)], check=True, stderr=subprocess.DEVNULL)
    return out


def seconds_per_20_updates(genome, table, rows, model_name, width, batch_size=100, seed=1):
    """The paper's speed figure: seconds for 20 training updates of `batch_size` real windows
    (after one warm-up update), and the model's parameter count."""
    configure_determinism(seed)
    model = build_model(model_name, len(table.class_names), int(table.ends[0] - table.starts[0]), width)
    compile_model(model, 1e-3)
    batches = TrainBatches(genome, table, rows, batch_size, 21, seed)
    data = [batches[i] for i in range(21)]
    model.train_on_batch(*data[0])
    started = time.perf_counter()
    for x, y in data[1:]:
        model.train_on_batch(x, y)
    return time.perf_counter() - started, model.count_params()


def jaspar_motifs():
    return read_motif_db(str(JASPAR))


def by_method(scores):
    """{'gc' | 'motif' | 'chance': score} of the baseline scores of a one-class (CTCF) table;
    the motif's name is in its score's 'method' (motif:NAME)."""
    return {"motif" if s["method"].startswith(MOTIF_METHOD) else s["method"]: s for s in scores}


def held_out_baselines(genome, table, rows, seed=1):
    """The baselines of a one-class table on its held-out `rows` (by_method), the motif the
    JASPAR 2024 cluster with the best AUROC on 2,000 of its train windows (deepgmap_core.baselines)."""
    train_rows = np.flatnonzero(table.splits == "train")
    return by_method(baseline_scores(genome, table, {"held_out": rows}, train_rows, jaspar_motifs(), seed)["held_out"])


BASELINES_LEGEND = ("baselines without training, on the same held-out windows: GC = each window's G+C fraction as "
                    "the score; motif = the best log-odds match (both strands) of the JASPAR 2024 cluster that ranks "
                    "2,000 chr20 windows best; chance = a random ranking (AUROC 0.5, AUPRC the share of positives)")


def machine_lines():
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        names = re.findall(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = names[0] if names else cpu
    versions = ", ".join(f"{k} {v}" for k, v in package_versions().items())
    return [f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
            f"- machine: {cpu}, {os.cpu_count()} cores visible, {accelerator()}",
            f"- versions: {versions}"]


def write_section(results, key, title, command, text, figure=None):
    """Replace (or append) the section `key` of the markdown file `results`: title, machine, the
    command that regenerates it and `text` as printed; then `figure`, an image file beside `results`."""
    begin, end = f"<!-- {key} begin -->", f"<!-- {key} end -->"
    shown = ["", f"![{title}]({figure})"] if figure else []
    section = "\n".join([begin, f"## {title}", "", *machine_lines(), f"- regenerate: `{command}`", "",
                         "```", text.rstrip(), "```", *shown, end])
    results = Path(results)
    old = results.read_text() if results.exists() else \
        "# Benchmark results\n\nWritten by the scripts in `benchmarks/`; each section names the command that regenerates it, " \
        "and `python benchmarks/run_all.py` regenerates the performance and time-to-accuracy sections at once.\n"
    if begin in old:
        new = old[:old.index(begin)] + section + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + "\n\n" + section + "\n"
    results.write_text(new)


def paper_parser(doc, budget_minutes):
    """The options both paper tables take: the budget, the CPU width scale and the results file."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-minutes", type=float, default=budget_minutes)
    parser.add_argument("--width", type=float, default=0.1, help="width scale on a CPU (a GPU runs 1.0)")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"))
    return parser


class Transcript:
    """Lines printed as they come and kept for RESULTS.md."""

    def __init__(self):
        self.lines = []

    def __call__(self, line=""):
        print(line, flush=True)
        self.lines.append(line)

    def text(self):
        return "\n".join(self.lines)
