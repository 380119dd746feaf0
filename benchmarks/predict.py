"""Benchmark: genome-wide prediction with the convolutions shared across overlapping windows
vs. window by window, and the cost of writing bigWigs.

conv4-FRSS (--width, default 1.0) with random weights scores the real hg19 chr20:1-5 Mb of the
example genome (windows of 1 kb every 300 bp) both ways in one run; the predictions are
compared. Then the bins are written as a bigWig by our track writer and, as the baseline, by
a bare pyBigWig call with the same values.

Usage: python benchmarks/predict.py [--width 1.0] [--length 1000000]
"""

import argparse
import os
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
import pyBigWig  # noqa: E402

from deepgmap_core.genome import Genome  # noqa: E402
from deepgmap_core.models.build import build_model  # noqa: E402
from deepgmap_core.predict import predict_starts  # noqa: E402
from deepgmap_core.settings import PredictSettings  # noqa: E402
from deepgmap_core.tracks import ChromosomeTrack, TrackWriters, bin_means  # noqa: E402
from deepgmap_core.shared_trunk import trunk_plan  # noqa: E402
from deepgmap_core.windows import window_starts  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--length", type=int, default=1_000_000, help="bp of chr20 to score (from 1 Mb on)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    keras.utils.set_random_seed(1)
    model = build_model("conv4-frss", 2, 1000, args.width)
    plan, _ = trunk_plan(model)
    settings = PredictSettings(threads=args.threads)
    with Genome(str(REPO / "test-data" / "genome.fa.gz")) as genome:
        starts = 1_000_000 + window_starts(args.length, 1000, 300)
        predict_starts(model, genome, "chr20", starts[:300], 1000, settings, plan=plan)  # warm-up
        predict_starts(model, genome, "chr20", starts[:300], 1000, settings)
        timings = {}
        for name, used_plan in (("shared trunk", plan), ("per window", None)):
            start = time.perf_counter()
            result = predict_starts(model, genome, "chr20", starts, 1000, settings, plan=used_plan)
            timings[name] = (time.perf_counter() - start, result)
    (shared_time, shared), (alone_time, alone) = timings["shared trunk"], timings["per window"]
    print(f"{time.strftime('%Y-%m-%d')}: conv4-frss width {args.width}, {len(starts):,} windows of hg19 chr20, "
          f"Keras {keras.__version__} on {keras.backend.backend()}, {os.cpu_count()} CPU(s)")
    print(f"  per window     {alone_time:7.2f} s  {len(starts) / alone_time:9.1f} windows/s")
    print(f"  shared trunk   {shared_time:7.2f} s  {len(starts) / shared_time:9.1f} windows/s  "
          f"speed-up {alone_time / shared_time:.2f} x (bound 1000/300 = 3.33 x), "
          f"largest difference {np.abs(shared - alone).max():.1e}")
    # bigWig writing: a whole-genome-sized track (chr20's 63 Mb of bins) through our writer vs bare pyBigWig.
    length = 63_025_520
    all_starts = window_starts(length, 1000, 300)
    values = np.random.default_rng(1).random((len(all_starts), 2)).astype(np.float32)
    track = ChromosomeTrack("chr20", *bin_means(all_starts, values, length, 1000, 300))
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        writers = TrackWriters([f"{work}/a.bw", f"{work}/b.bw"], {"chr20": length})
        writers.add(track)
        writers.close()
        ours = time.perf_counter() - start
        start = time.perf_counter()
        for i, path in enumerate((f"{work}/c.bw", f"{work}/d.bw")):
            handle = pyBigWig.open(path, "w")
            handle.addHeader([("chr20", length)], maxZooms=10)
            handle.addEntries(["chr20"] * len(track.starts), track.starts.tolist(), ends=track.ends.tolist(),
                              values=track.values[:, i].astype(np.float64).tolist())
            handle.close()
        bare = time.perf_counter() - start
    print(f"  bigWig writing of {len(track.starts):,} bins x 2 classes: ours {ours:.2f} s, bare pyBigWig "
          f"{bare:.2f} s, overhead {100 * (ours - bare) / bare:+.1f}%")


if __name__ == "__main__":
    main()
