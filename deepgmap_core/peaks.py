"""Peak and region files: BED (3+ columns) and narrowPeak (summit offset in column 10), gzip allowed."""

import os
import re
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .fileio import open_text

_HEADER_PREFIXES = ("#", "track", "browser")
# A comment/track/browser line or a blank one (whitespace other than the line break).
_SKIPPED_LINE = re.compile(r"^(?:#|track|browser|[^\S\n]*$)", re.MULTILINE)


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
        """(PeakSet of the records on `chrom_lengths`' chromosomes, dict chrom -> Intervals left out).
        Ends past a chromosome's end are cut to it, and a summit past it moves to the middle of
        what is left (peak callers write such ends; a summit past the end would label nothing);
        a record starting past the end is another assembly's: InputError naming its line."""
        kept = {}
        for chrom, iv in self.by_chrom.items():
            if chrom not in chrom_lengths:
                continue
            length = chrom_lengths[chrom]
            _first_fault(iv.starts >= length, iv.lines, self.path,
                         f"the record starts past the end of {chrom} ({length:,} bp in the genome): another assembly?")
            ends = np.minimum(iv.ends, length)
            summits = np.where(iv.summits >= length, (iv.starts + ends) // 2, iv.summits)
            kept[chrom] = Intervals(iv.starts, ends, summits, iv.lines)
        missing = {c: iv for c, iv in self.by_chrom.items() if c not in chrom_lengths}
        return PeakSet(self.path, kept), missing


def check_blacklist_naming(blacklist, chrom_names, what):
    """InputError when a blacklist names none of the chromosomes of the `what` ('genome', 'BAM'):
    another naming ('22' for 'chr22') or assembly would silently remove nothing. A genome-wide
    blacklist naming chromosomes beyond them is normal."""
    if not set(blacklist.by_chrom) & set(chrom_names):
        raise InputError(f"{blacklist.path}: the blacklist names none of the {what}'s chromosomes (blacklist: "
                         f"{', '.join(sorted(blacklist.by_chrom)[:3])}; {what}: {', '.join(list(chrom_names)[:3])}): "
                         f"is it the same assembly and naming?")


def default_class_name(path):
    """File stem without compression and peak/BED extensions: 'CTCF.narrowPeak.gz' -> 'CTCF'."""
    name = os.path.basename(path)
    for suffix in (".gz", ".bgz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    stem, extension = os.path.splitext(name)
    return stem if extension.lower() in {".bed", ".narrowpeak", ".broadpeak", ".txt", ".tsv", ".encodepeak"} else name


def _parse_fast(lines, has_summit):
    """Integer columns (start, end[, summit offset]) of tab-separated lines, in C; ValueError on any fault."""
    columns = (1, 2, 9) if has_summit else (1, 2)
    table = np.loadtxt(lines, dtype=np.int64, delimiter="\t", usecols=columns, ndmin=2)
    return [line.split("\t", 1)[0] for line in lines], table


def _parse_checked(lines, line_numbers, path, has_summit):
    """The same as _parse_fast one line at a time: accepts any whitespace as separator and
    raises InputError naming the first line that cannot be read."""
    chroms, rows = [], []
    for line, line_number in zip(lines, line_numbers):
        fields = line.split("\t")
        if len(fields) < 3:
            fields = line.split()
        where = f"{path}:{line_number}: malformed {'narrowPeak' if has_summit else 'BED'} line"
        needed = 10 if has_summit else 3
        if len(fields) < needed:
            raise InputError(f"{where}: {len(fields)} column(s), at least {needed} needed")
        try:
            row = (int(fields[1]), int(fields[2]))
        except ValueError:
            raise InputError(f"{where}: start and end must be integers, got {fields[1]!r} and {fields[2]!r}") from None
        if has_summit:
            try:
                row += (int(fields[9]),)
            except ValueError:
                raise InputError(f"{where}: summit offset (column 10) must be an integer, got {fields[9]!r}") from None
        rows.append(row)
        chroms.append(fields[0])
    return chroms, np.array(rows, dtype=np.int64)


def _first_fault(bad, line_numbers, path, text):
    if bad.any():
        raise InputError(f"{path}:{line_numbers[np.argmax(bad)]}: {text}")


def read_peaks(path, what="peak file"):
    """Read a BED or narrowPeak file (gzip allowed) into a PeakSet.

    Summits are narrowPeak column 10 (offset from the start; -1 = none) when the first
    record has 10 or more columns, else the midpoint. Comment, 'track' and 'browser' lines
    are skipped. Malformed lines and files without a single record raise InputError
    naming the file and line.
    """
    with open_text(path, what) as handle:
        text = handle.read()
    lines = text.splitlines()
    line_numbers = np.arange(1, len(lines) + 1)
    # Most files have no line to skip: one regex scan (past the final line break) instead of a loop.
    if _SKIPPED_LINE.search(text[:-1] if text.endswith("\n") else text):
        skip = np.array([not line.strip() or line.startswith(_HEADER_PREFIXES) for line in lines], dtype=bool)
        lines = [line for line, skipped in zip(lines, skip) if not skipped]
        line_numbers = line_numbers[~skip]
    if not lines:
        raise InputError(f"{path}: empty {what}: no BED records")
    first = lines[0].split("\t") if "\t" in lines[0] else lines[0].split()
    has_summit = len(first) >= 10
    try:
        chroms, table = _parse_fast(lines, has_summit)
    except ValueError:
        chroms, table = _parse_checked(lines, line_numbers, path, has_summit)
    starts, ends = table[:, 0], table[:, 1]
    _first_fault(starts < 0, line_numbers, path, "malformed BED line: start < 0")
    _first_fault(ends <= starts, line_numbers, path, "malformed BED line: end <= start")
    summits = (starts + ends) // 2
    if has_summit:
        offsets = table[:, 2]
        _first_fault((offsets < -1) | (offsets >= ends - starts), line_numbers, path,
                     "malformed narrowPeak line: summit offset (column 10) outside the peak")
        summits = np.where(offsets == -1, summits, starts + offsets)
    chrom_names, chrom_index = np.unique(np.array(chroms), return_inverse=True)
    order = np.lexsort((starts, chrom_index))
    bounds = np.searchsorted(chrom_index[order], np.arange(len(chrom_names) + 1))
    by_chrom = {}
    for i, chrom in enumerate(chrom_names):
        rows = order[bounds[i]:bounds[i + 1]]
        by_chrom[str(chrom)] = Intervals(starts[rows], ends[rows], summits[rows], line_numbers[rows])
    return PeakSet(path, by_chrom)


def merge_intervals(starts, ends):
    """Union of intervals as sorted, non-overlapping (starts, ends); touching ones are joined."""
    if len(starts) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    opens = np.concatenate([[True], starts[1:] > reach[:-1]])
    closes = np.concatenate([opens[1:], [True]])
    return starts[opens], reach[closes]


def overlaps_any(starts, ends, merged_starts, merged_ends):
    """Mask of the intervals [start, end) that overlap any merged interval by >= 1 bp."""
    # The first merged interval ending after `start` is the only candidate: it overlaps if it begins before `end`.
    candidate = np.searchsorted(merged_ends, starts, side="right")
    inside = candidate < len(merged_starts)
    result = np.zeros(len(starts), dtype=bool)
    result[inside] = merged_starts[candidate[inside]] < ends[inside]
    return result
