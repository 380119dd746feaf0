"""Benchmark: training throughput of conv4-FRSS against the machine's matrix-multiply peak.

Measured in one run:
  peak      float32 GEMM (n x n @ n x n) through the same backend, GFLOP/s
  training  samples/s of conv4-FRSS at width 1.0 and 0.25 (batch 100, Adam), and the achieved
            GFLOP/s: 3 x the forward FLOPs per sample (forward + two backward products),
            counted from the layer shapes; as a share of the peak
  pipeline  time per batch of streaming batches from the genome (read, one-hot) with --threads
            loading threads, as a share of a step (the loading overlaps the steps when training)

Usage: python benchmarks/train.py [--steps 3] [--widths 1.0 0.25]
       KERAS_BACKEND=torch python benchmarks/train.py --gemm-size 8192 --steps 20   (on a GPU)
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # as deepgmap-train-model runs

import keras  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from deepgmap_core.genome import Genome  # noqa: E402
from deepgmap_core.models.build import build_model  # noqa: E402
from deepgmap_core.models.layers import FRSSConv1D  # noqa: E402
from deepgmap_core.backend import accelerator  # noqa: E402
from deepgmap_core.batching import prefetched  # noqa: E402
from deepgmap_core.training import TrainBatches, compile_model  # noqa: E402
from deepgmap_core.windows import read_windows_table  # noqa: E402


def gemm_peak(n=2048, repeats=10):
    a = keras.random.normal((n, n), seed=1)
    b = keras.random.normal((n, n), seed=2)
    keras.ops.convert_to_numpy(keras.ops.matmul(a, b))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.matmul(a, b)))
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def forward_flops(model):
    """Multiply-adds x 2 of the convolution, LSTM and dense layers for one window."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv1D, FRSSConv1D)):
            width, channels, filters = layer.kernel.shape
            inputs = layer.input[0] if isinstance(layer.input, list) else layer.input
            out_length = inputs.shape[1] - width + 1
            streams = 2 if isinstance(layer, FRSSConv1D) else 1
            total += streams * 2 * out_length * width * channels * filters
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Bidirectional):
            steps, features = layer.input.shape[1], layer.input.shape[2]
            units = layer.forward_layer.units
            total += 2 * steps * 2 * 4 * (features + units) * units
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per width (after a warm-up)")
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=min(os.cpu_count(), 4), help="batch-loading threads")
    parser.add_argument("--gemm-size", type=int, default=2048, help="n of the n x n GEMM (8192 on a GPU)")
    args = parser.parse_args()
    peak = gemm_peak(args.gemm_size)
    print(f"{time.strftime('%Y-%m-%d')}, Keras {keras.__version__} on {accelerator()}, "
          f"{os.cpu_count()} CPU(s): float32 GEMM peak {peak:,.1f} GFLOP/s")
    table = read_windows_table(str(REPO / "test-data" / "windows.tsv"))
    train_rows = np.flatnonzero(table.splits == "train")
    with Genome(str(REPO / "test-data" / "genome.fa.gz")) as genome:
        batches = TrainBatches(genome, table, train_rows, args.batch_size, 40, seed=1)
        start = time.perf_counter()
        for x, y in prefetched(batches, args.threads):
            pass
        pipeline = (time.perf_counter() - start) / len(batches)
        for width in args.widths:
            keras.utils.set_random_seed(1)
            model = build_model("conv4-frss", 2, 1000, width)
            compile_model(model, 1e-4)
            model.train_on_batch(x, y)  # warm-up: graph tracing
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            step = (time.perf_counter() - start) / args.steps
            flops = 3 * forward_flops(model)
            achieved = flops * args.batch_size / step / 1e9
            print(f"conv4-frss width {width:<5} {model.count_params():>11,} parameters  "
                  f"{flops / 1e9:6.2f} GFLOP/sample  {args.batch_size / step:8.1f} samples/s  "
                  f"{achieved:7.1f} GFLOP/s = {100 * achieved / peak:5.1f}% of peak  "
                  f"input pipeline {1000 * pipeline:5.1f} ms/batch = {100 * pipeline / step:4.1f}% of a step")


if __name__ == "__main__":
    main()
