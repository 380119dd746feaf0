"""Benchmark: attribution throughput against the model's own forward pass, and TF-MoDISco's time
and peak memory.

Windows around real CTCF regions of hg19 chr20 (the shared data; the example genome's chr20
piece without it) are encoded once; then, measured in the same run on the same windows, the
model's forward pass (the baseline: regions/s of predict_batch) and each attribution method
(regions/s of attribution.Attributor, every class): grad-x-input (goal: within 3x of the
forward pass), integrated gradients (--steps x --references path points per window) and ISM
(about 3 x window mutants per window; on --ism-regions only). Then deepgmap-attribute writes
the contributions of --regions windows and deepgmap-discover-motifs runs TF-MoDISco on them in a
fresh process: its time and peak memory (the largest process of it and its children).

Usage: python benchmarks/attribute.py [--regions 2000] [--ism-regions 20] [--model test-data/CTCF_chr20.keras]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from deepgmap_core.cli.common import import_keras  # noqa: E402

import_keras(onednn=True)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from deepgmap_core.attribution import AttributionSettings, Attributor  # noqa: E402
from deepgmap_core.genome import Genome, one_hot_windows  # noqa: E402
from deepgmap_core.models.files import load_model  # noqa: E402
from deepgmap_core.peaks import read_peaks  # noqa: E402
from deepgmap_core.predict import predict_batch  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "hg19"
BIN = Path(sys.executable).parent


def genome_and_regions():
    if (SHARED / "chr20.fa.gz").exists():
        return SHARED / "chr20.fa.gz", SHARED / "CTCF.chr20.bed", "hg19 chr20 CTCF regions (shared data)"
    return REPO / "test-data" / "genome.fa.gz", REPO / "test-data" / "CTCF.bed", "example genome CTCF regions"


def regions_per_second(function, x, batch_size):
    function(x[:batch_size])  # warm-up (graph tracing)
    start = time.perf_counter()
    for lo in range(0, len(x), batch_size):
        function(x[lo:lo + batch_size])
    return len(x) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regions", type=int, default=2000)
    parser.add_argument("--ism-regions", type=int, default=20)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--references", type=int, default=4)
    parser.add_argument("--model", default=str(REPO / "test-data" / "CTCF_chr20.keras"))
    args = parser.parse_args()
    genome_path, regions_path, what = genome_and_regions()
    model, info = load_model(args.model, compile=False)
    window = info.window
    intervals = read_peaks(str(regions_path)).by_chrom["chr20"]
    chosen = np.sort(np.random.default_rng(1).permutation(len(intervals.starts))[:args.regions])
    with Genome(str(genome_path)) as genome:
        starts = np.clip(intervals.summits[chosen] - window // 2, 0, genome.lengths["chr20"] - window)
        x = one_hot_windows(genome, ["chr20"] * len(starts), starts, window)
    rng = np.random.default_rng(0)
    forward = regions_per_second(lambda batch: predict_batch(model, batch), x, 64)
    rates = {}
    for method, count in (("grad-x-input", len(x)), ("integrated-gradients", min(len(x), 100)),
                          ("ism", args.ism_regions)):
        settings = AttributionSettings(method, args.steps, args.references, batch_size=256)
        per_call = {"grad-x-input": 64, "integrated-gradients": max(1, 256 // (args.steps * args.references)),
                    "ism": 4}[method]
        attributor = Attributor(model, settings)
        rates[method] = regions_per_second(lambda batch: attributor(batch, rng), x[:count], per_call)
    with tempfile.TemporaryDirectory() as work:
        bed = Path(work) / "regions.bed"
        bed.write_text("".join(f"chr20\t{s + window // 2 - 1}\t{s + window // 2 + 1}\n" for s in starts.tolist()))
        h5 = Path(work) / "contributions.h5"
        start = time.perf_counter()
        subprocess.run([str(BIN / "deepgmap-attribute"), "-q", "--model", args.model, "--genome", str(genome_path),
                        "--regions", str(bed), "--chroms", "all", "-o", str(h5)], check=True)
        attribute_seconds = time.perf_counter() - start
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        run = subprocess.run([str(BIN / "deepgmap-discover-motifs"), "-i", str(h5), "-o", str(Path(work) / "p.meme")],
                             capture_output=True, text=True, check=True)
        modisco_seconds = time.perf_counter() - start
        peak_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(f"{time.strftime('%Y-%m-%d')}: {Path(args.model).name} ({info.model}, width "
          f"{info.width_scale}, {window} bp windows), {len(x):,} {what}, Keras {keras.__version__} on "
          f"{keras.backend.backend()}, {os.cpu_count()} CPU(s)")
    print(f"  baseline: the model's forward pass          {forward:9.1f} regions/s")
    for method, rate in rates.items():
        detail = {"grad-x-input": "goal: within 3x",
                  "integrated-gradients": f"{args.steps} steps x {args.references} references",
                  "ism": f"{3 * window} mutants a window"}[method]
        print(f"  {method:<22} {rate:12.2f} regions/s: {forward / rate:7.1f}x the forward pass's time ({detail})")
    print(f"  deepgmap-attribute (grad-x-input, {len(x):,} regions, start-up included) {attribute_seconds:.1f} s")
    print(f"  deepgmap-discover-motifs (TF-MoDISco) on them: {modisco_seconds:.1f} s, peak memory {peak_mb:,.0f} MB; "
          f"{run.stderr.strip().splitlines()[-1] if run.stderr.strip() else ''}")


if __name__ == "__main__":
    main()
