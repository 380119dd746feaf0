"""Benchmark: deepgmap-score-variants throughput and memory on a large VCF.

A VCF of random SNVs (true REF bases) on the real hg19 chr20 piece of the example genome is
scored by the command (a fresh process per size, peak memory from the process itself), at
--small and --records records: memory should be flat in the VCF's size. As the baseline,
measured in the same run, the same model predicts the same number of windows already encoded
in memory (no VCF, no sequence reads): the bound the tool can reach is half that rate (two
windows per SNV). The rate between the two sizes excludes the start-up (Keras import, model
loading).

Usage: python benchmarks/variants.py [--records 100000] [--small 10000] [--model test-data/model.keras]
"""

import argparse
import os
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

from deepgmap_core.genome import Genome, one_hot_windows  # noqa: E402
from deepgmap_core.models.files import load_model  # noqa: E402
from deepgmap_core.predict import predict_batch  # noqa: E402

GENOME = REPO / "test-data" / "genome.fa.gz"
RUN_AND_REPORT_MEMORY = """
import resource, sys, time
from deepgmap_core.cli.score_variants import main
start = time.perf_counter()
code = main(sys.argv[1:])
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, code)
"""


def write_snvs(path, genome, count, seed=1):
    sequence = np.frombuffer(genome.fetch("chr20", 0, genome.lengths["chr20"]).upper(), dtype=np.uint8)
    acgt = np.flatnonzero(np.isin(sequence, np.frombuffer(b"ACGT", dtype=np.uint8)))
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.choice(acgt, count, replace=False))
    refs = sequence[positions]
    alts = np.frombuffer(b"ACGT", dtype=np.uint8)[(np.searchsorted(np.frombuffer(b"ACGT", dtype=np.uint8), refs)
                                                    + rng.integers(1, 4, count)) % 4]
    with open(path, "w") as handle:
        handle.write("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        handle.writelines(f"chr20\t{p + 1}\t.\t{chr(r)}\t{chr(a)}\t.\t.\t.\n"
                          for p, r, a in zip(positions.tolist(), refs.tolist(), alts.tolist()))


def score_in_fresh_process(model, vcf, output):
    result = subprocess.run([sys.executable, "-c", RUN_AND_REPORT_MEMORY, "--model", model, "--genome", str(GENOME),
                             "--vcf", vcf, "-o", output], capture_output=True, text=True, cwd=REPO, check=True)
    seconds, megabytes, code = result.stdout.split()
    assert code == "0", result.stderr
    return float(seconds), float(megabytes)


def model_windows_per_second(model_path, genome, count, batch_size=256):
    model, _ = load_model(model_path, compile=False)
    starts = np.random.default_rng(2).integers(0, genome.lengths["chr20"] - 1000, count)
    x = one_hot_windows(genome, ["chr20"] * count, starts, 1000)
    predict_batch(model, x[:batch_size])  # warm-up
    start = time.perf_counter()
    for i in range(0, count, batch_size):
        predict_batch(model, x[i:i + batch_size])
    return count / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--model", default=str(REPO / "test-data" / "model.keras"))
    args = parser.parse_args()
    with Genome(str(GENOME)) as genome, tempfile.TemporaryDirectory() as work:
        baseline_windows = min(2 * args.small, 20_000)
        before = model_windows_per_second(args.model, genome, baseline_windows)
        results = {}
        for count in (args.small, args.records):
            vcf = f"{work}/snvs{count}.vcf"
            write_snvs(vcf, genome, count)
            results[count] = score_in_fresh_process(args.model, vcf, f"{work}/out{count}.vcf.gz")
        # Measured before and after the runs, the faster taken: other load on the machine lowers only one of them.
        bound = max(before, model_windows_per_second(args.model, genome, baseline_windows)) / 2
    print(f"{time.strftime('%Y-%m-%d')}: {Path(args.model).name}, SNVs on hg19 chr20:1-5,000,000, "
          f"Keras {keras.__version__} on {keras.backend.backend()}, {os.cpu_count()} CPU(s)")
    print(f"  baseline: the model alone on encoded windows   {bound:9.1f} variants/s (2 windows each)")
    for count, (seconds, megabytes) in results.items():
        print(f"  deepgmap-score-variants, {count:>9,} records  {count / seconds:9.1f} variants/s "
              f"({100 * count / seconds / bound:.0f}% of the baseline), {seconds:7.1f} s, peak memory {megabytes:,.0f} MB")
    (small_seconds, _), (large_seconds, _) = results[args.small], results[args.records]
    steady = (args.records - args.small) / (large_seconds - small_seconds)
    print(f"  the records between the two sizes (start-up excluded) {steady:9.1f} variants/s "
          f"({100 * steady / bound:.0f}% of the baseline)")


if __name__ == "__main__":
    main()
