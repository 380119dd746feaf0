"""Peak calling with MACS3, with the DeepGMAP paper's presets, and cleaning of its output."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

from .alignments import is_mitochondrial
from .bounds import POSITIVE_PROBABILITY
from .errors import InputError
from .peaks import merge_intervals, overlaps_any

ASSAYS = ("chip", "dnase", "atac")
GENOME_SIZES = ("hs", "mm", "ce", "dm")
# DNase-seq/ATAC-seq: no fragment model; cut sites extended to 200 bp around themselves.
_OPEN_CHROMATIN = ["--nomodel", "--shift", "-100", "--extsize", "200"]
# ChIP-seq: the paper's `--call-summits -q 0.01` with MACS3's fragment model; when too few
# paired peaks exist to build the model (small or shallow data), --fix-bimodal falls back to
# extending reads to 200 bp instead of stopping.
_CHIP = ["--fix-bimodal", "--extsize", "200"]


@dataclass
class PeakCallSettings:
    assay: str = "chip"
    genome_size: str = "hs"
    qvalue: float = 0.01
    paired: bool = False
    name: str = "sample"

    def check(self):
        if self.assay not in ASSAYS:
            raise InputError(f"--assay must be one of {', '.join(ASSAYS)}, got {self.assay!r}")
        POSITIVE_PROBABILITY.check(self.qvalue, "--qvalue")
        if self.genome_size not in GENOME_SIZES:
            try:
                size = float(self.genome_size)
            except ValueError:
                size = 0
            if size <= 0:
                raise InputError(f"--genome-size must be one of {', '.join(GENOME_SIZES)} or a positive "
                                 f"number of bp (e.g. 1.2e7), got {self.genome_size!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", self.name):
            raise InputError(f"--name may hold only letters, digits and _ . + -, got {self.name!r}")


def find_macs3():
    """The macs3 command of this Python environment, else the one on PATH."""
    here = os.path.dirname(sys.executable)
    found = shutil.which("macs3", path=os.pathsep.join([here, os.environ.get("PATH", "")]))
    if found is None:
        raise InputError("macs3 not found: install MACS3 (`pip install macs3`) in this environment")
    return found


def macs3_command(treatment, control, settings, outdir):
    """The `macs3 callpeak` argument list for these inputs and settings."""
    command = [find_macs3(), "callpeak", "-t", treatment, "-f", "BAMPE" if settings.paired else "BAM",
               "-g", settings.genome_size, "-q", str(settings.qvalue), "--call-summits",
               "-n", settings.name, "--outdir", outdir, "--tempdir", outdir]
    if control:
        command += ["-c", control]
    return command + (_CHIP if settings.assay == "chip" else _OPEN_CHROMATIN)


@dataclass
class CalledPeaks:
    """MACS3 narrowPeak records (as split fields) and their summit BED records, row for row."""

    peaks: list
    summits: list
    command: list

    def coordinates(self):
        chroms = np.array([row[0] for row in self.peaks], dtype=object)
        table = np.array([(int(row[1]), int(row[2])) for row in self.peaks], dtype=np.int64).reshape(-1, 2)
        return chroms, table[:, 0], table[:, 1]


def call_peaks(treatment, control, settings):
    """Run MACS3 in a temporary folder and read back its narrowPeak and summits. Its scratch files go
    there too: a run stopped by a signal kills MACS3 (subprocess.run) and the folder goes with all."""
    settings.check()
    with tempfile.TemporaryDirectory(prefix="deepgmap-macs3-") as outdir:
        command = macs3_command(treatment, control, settings, outdir)
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TMPDIR": outdir})
        if result.returncode != 0:
            problems = [line for line in result.stderr.splitlines() if "ERROR" in line or "Error" in line]
            last = (problems or result.stderr.strip().splitlines() or ["no message"])[-1].strip()
            raise InputError(f"MACS3 failed on {treatment} (exit code {result.returncode}): {last}")
        peaks = _read_rows(os.path.join(outdir, f"{settings.name}_peaks.narrowPeak"))
        summits = _read_rows(os.path.join(outdir, f"{settings.name}_summits.bed"))
    if len(peaks) != len(summits) or any(p[3] != s[3] for p, s in zip(peaks, summits)):
        raise InputError("MACS3 wrote summits that do not match its peaks row for row")
    return CalledPeaks(peaks, summits, command)


def _read_rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [line.rstrip("\n").split("\t") for line in handle if line.strip()]


def clean_peaks(called, blacklist=None):
    """Drop peaks on mitochondrial chromosomes or overlapping `blacklist` (a PeakSet), clamp
    the narrowPeak score to an integer in 0-1000, sort by chromosome and start.
    Returns (CalledPeaks, number removed)."""
    if not called.peaks:
        return called, 0
    chroms, starts, ends = called.coordinates()
    keep = np.array([not is_mitochondrial(c) for c in chroms], dtype=bool)
    if blacklist is not None:
        for chrom, listed in blacklist.by_chrom.items():
            on_chrom = chroms == chrom
            merged = merge_intervals(listed.starts, listed.ends)
            keep[on_chrom] &= ~overlaps_any(starts[on_chrom], ends[on_chrom], *merged)
    order = [i for i in np.lexsort((starts, chroms.astype(str))) if keep[i]]
    peaks = []
    for i in order:
        row = list(called.peaks[i])
        row[4] = str(min(max(int(float(row[4])), 0), 1000))
        peaks.append(row)
    return CalledPeaks(peaks, [called.summits[i] for i in order], called.command), int((~keep).sum())


def write_rows(rows, stream):
    stream.write("".join("\t".join(row) + "\n" for row in rows).encode())
