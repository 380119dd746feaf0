"""Peak and region files: BED (3+ columns) and narrowPeak (summit offset in column 10), gzip allowed."""

import os
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .fileio import open_text

_HEADER_PREFIXES = ("#", "track", "browser")


@dataclass
class Intervals:
    """Half-open intervals of one chromosome, with their summits and source line numbers."""

    starts: np.ndarray
    ends: np.ndarray
    summits: np.ndarray
    lines: np.ndarray


@dataclass
class PeakSet:
    """The records of one BED/narrowPeak file, grouped by chromosome."""

    path: str
    by_chrom: dict

    @property
    def count(self):
        return sum(len(iv.starts) for iv in self.by_chrom.values())

    def restricted_to(self, chrom_lengths):
        """(PeakSet of the records on `chrom_lengths`' chromosomes, dict chrom -> Intervals left out)."""
        kept = {c: iv for c, iv in self.by_chrom.items() if c in chrom_lengths}
        missing = {c: iv for c, iv in self.by_chrom.items() if c not in chrom_lengths}
        return PeakSet(self.path, kept), missing


def default_class_name(path):
    """File stem without compression and peak/BED extensions: 'CTCF.narrowPeak.gz' -> 'CTCF'."""
    name = os.path.basename(path)
    for suffix in (".gz", ".bgz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    stem, extension = os.path.splitext(name)
    return stem if extension.lower() in {".bed", ".narrowpeak", ".broadpeak", ".txt", ".tsv", ".encodepeak"} else name


def _parse_record(fields, path, line_number):
    where = f"{path}:{line_number}"
    if len(fields) < 3:
        raise InputError(f"{where}: malformed BED line: {len(fields)} column(s), at least 3 needed")
    try:
        start, end = int(fields[1]), int(fields[2])
    except ValueError:
        raise InputError(f"{where}: malformed BED line: start and end must be integers, "
                         f"got {fields[1]!r} and {fields[2]!r}") from None
    if start < 0 or end <= start:
        raise InputError(f"{where}: malformed BED line: need 0 <= start < end, got {start} and {end}")
    summit = (start + end) // 2
    if len(fields) >= 10:
        try:
            offset = int(fields[9])
        except ValueError:
            raise InputError(f"{where}: malformed narrowPeak line: summit offset (column 10) "
                             f"must be an integer, got {fields[9]!r}") from None
        if offset >= end - start or offset < -1:
            raise InputError(f"{where}: malformed narrowPeak line: summit offset {offset} "
                             f"outside the peak of length {end - start}")
        if offset != -1:
            summit = start + offset
    return start, end, summit


def read_peaks(path, what="peak file"):
    """Read a BED or narrowPeak file (gzip allowed) into a PeakSet.

    Summits are narrowPeak column 10 (offset from the start; -1 = none) or else the
    midpoint. Comment, 'track' and 'browser' lines are skipped. Malformed lines and
    files without a single record raise InputError naming the file and line.
    """
    records = {}
    with open_text(path, what) as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip() or line.startswith(_HEADER_PREFIXES):
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) < 3:
                fields = line.split()
            start, end, summit = _parse_record(fields, path, line_number)
            records.setdefault(fields[0], []).append((start, end, summit, line_number))
    if not records:
        raise InputError(f"{path}: empty {what}: no BED records")
    by_chrom = {}
    for chrom, rows in records.items():
        table = np.array(rows, dtype=np.int64)
        table = table[np.argsort(table[:, 0], kind="stable")]
        by_chrom[chrom] = Intervals(table[:, 0], table[:, 1], table[:, 2], table[:, 3])
    return PeakSet(path, by_chrom)
