"""Peak and region files: BED (3+ columns, BED12 too) and narrowPeak (summit offset in column 10), gzip allowed."""

import os
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .errors import InputError
from .fileio import open_text
from .text_columns import LANE, NEWLINE, TAB, decoded, name_runs, padded_lines, unix_line_ends, whole_numbers

_HEADER_PREFIXES = ("#", "track", "browser")
# NUL, and the bytes that str.splitlines() takes for line breaks besides CR and LF: a file holding
# any is read as text, so that both readers see the same lines.
_ODD_BYTES = (b"\0", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e")
_MAX_NAME = 64  # bytes of the longest chromosome name parsed as bytes (a gather of that width per record)
_HASH, _MINUS, _ONE = ord("#"), ord("-"), ord("1")
_INT64_LIMIT = 1 << 63
_BLANK_STARTS = np.frombuffer(b" \t\x1f", np.uint8)  # first bytes of a line that may be only white space


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


def _parse_bytes(data):
    """(chromosome names, each record's name index, integer columns (start, end[, summit offset]),
    line numbers) of a file read as bytes with numpy, when every record has the first one's number
    of tab-separated cells and plain whole numbers in them (and the file only ASCII); None for
    any other file (read as text by _parse_text, which accepts more and names a bad line) and
    for one without a record."""
    if not data.isascii() or any(odd in data for odd in _ODD_BYTES):
        return None
    if not data.endswith((b"\n", b"\r")):
        data += b"\n"
    padded, line_starts, line_ends = padded_lines([unix_line_ends(data)], _MAX_NAME + LANE)
    heads = sliding_window_view(padded, LANE)[line_starts].view("<u8").ravel()  # each line's first 8 bytes
    first = padded[line_starts]
    skipped = (first == _HASH) | (first == NEWLINE) | _starts_with(heads, b"track") | _starts_with(heads, b"browser")
    for line in np.flatnonzero(np.isin(first, _BLANK_STARTS)):  # rare: a line starting with white space
        skipped[line] = not padded[line_starts[line]:line_ends[line]].tobytes().decode().strip()
    rows = np.flatnonzero(~skipped)
    if len(rows) == 0:
        return None
    tabs = np.flatnonzero(padded == TAB)
    tab_lines = np.searchsorted(line_ends, tabs)
    counts = np.bincount(tab_lines, minlength=len(line_starts))[rows]
    if counts[0] < 2 or (counts != counts[0]).any():
        return None
    first_record = padded[line_starts[rows[0]]:line_ends[rows[0]]].tobytes().decode().split("\t")
    # Per record, the byte before each cell (the line's start - 1, then its tabs) and its newline.
    bounds = np.column_stack([line_starts[rows] - 1, tabs[~skipped[tab_lines]].reshape(len(rows), -1),
                              line_ends[rows]])
    cells = [2, 3, 10] if _has_summit(first_record) else [2, 3]
    numbers, good = zip(*(whole_numbers(padded, bounds[:, k], bounds[:, k] - bounds[:, k - 1] - 1) for k in cells))
    numbers, good = list(numbers), list(good)
    if len(cells) == 3:  # a narrowPeak summit offset of -1: none
        cell = bounds[:, 9] + 1
        none = (bounds[:, 10] - cell == 2) & (padded[cell] == _MINUS) & (padded[cell + 1] == _ONE)
        numbers[2], good[2] = np.where(none, -1, numbers[2]), good[2] | none
    name_lengths = bounds[:, 1] - bounds[:, 0] - 1
    if not np.logical_and.reduce(good).all() or name_lengths.max() > _MAX_NAME:
        return None
    names, run_names, run_lengths = name_runs(padded, line_starts[rows], name_lengths)
    return [decoded(name) for name in names], np.repeat(run_names, run_lengths), np.column_stack(numbers), rows + 1


def _has_summit(fields):
    """Whether a file whose first record has `fields` is narrowPeak-like (a summit offset in column
    10): 10 columns or more, unless they are BED12's (thickStart, thickEnd, itemRgb, then
    blockCount and its comma lists of block sizes and starts), whose column 10 is the block count.
    A BED12 record is its interval, as in BED3."""
    if len(fields) < 12:
        return len(fields) >= 10
    count, rgb = fields[9], fields[8].split(",")
    blocks = [cell.removesuffix(",").split(",") for cell in fields[10:12]]
    is_bed12 = (fields[6].isdigit() and fields[7].isdigit() and len(rgb) in (1, 3) and all(map(str.isdigit, rgb))
                and count.isdigit() and all(len(cells) == int(count) and all(map(str.isdigit, cells))
                                            for cells in blocks))
    return not is_bed12


def _starts_with(heads, prefix):
    """Which of the lines' first 8 bytes (little-endian numbers) begin with `prefix`."""
    return heads & np.uint64((1 << 8 * len(prefix)) - 1) == int.from_bytes(prefix, "little")


def _parse_text(text, path, what):
    """_parse_bytes's result for any file, a line at a time: comment, track, browser and blank
    lines are skipped, cells are separated by tabs (or any white space on a line without three
    tab-separated cells), and the first line that cannot be read raises InputError naming it."""
    records = [(number, line) for number, line in enumerate(text.splitlines(), 1)
               if line.strip() and not line.startswith(_HEADER_PREFIXES)]
    if not records:
        raise InputError(f"{path}: empty {what}: no BED records")
    first = records[0][1]
    has_summit = _has_summit(first.split("\t") if "\t" in first else first.split())
    needed = 10 if has_summit else 3
    chroms, rows = [], []
    for number, line in records:
        fields = line.split("\t")
        if len(fields) < 3:
            fields = line.split()
        where = f"{path}:{number}: malformed {'narrowPeak' if has_summit else 'BED'} line"
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
        if max(map(abs, row)) >= _INT64_LIMIT:
            raise InputError(f"{where}: a number too large for a coordinate ({max(row, key=abs)})")
        rows.append(row)
        chroms.append(fields[0])
    names, index = np.unique(np.array(chroms), return_inverse=True)
    return names.tolist(), index, np.array(rows, dtype=np.int64), np.array([number for number, _ in records])


def _first_fault(bad, line_numbers, path, text):
    if bad.any():
        raise InputError(f"{path}:{line_numbers[np.argmax(bad)]}: {text}")


def read_peaks(path, what="peak file"):
    """Read a BED or narrowPeak file (gzip allowed) into a PeakSet.

    Summits are narrowPeak column 10 (offset from the start; -1 = none) when the first
    record has 10 or more columns and is not BED12 (_has_summit), else the midpoint.
    Comment, 'track' and 'browser' lines are skipped. Malformed lines and files without a
    single record raise InputError naming the file and line. Files of plain tab-separated
    records (nearly all) are parsed as bytes with numpy, never a Python object per line.
    """
    with open_text(path, what) as handle:
        data = handle.buffer.read()
    parsed = _parse_bytes(data) or _parse_text(data.decode("utf-8", "replace"), path, what)
    chrom_names, chrom_index, table, line_numbers = parsed
    starts, ends = table[:, 0], table[:, 1]
    _first_fault(starts < 0, line_numbers, path, "malformed BED line: start < 0")
    _first_fault(ends <= starts, line_numbers, path, "malformed BED line: end <= start")
    summits = (starts + ends) // 2
    if table.shape[1] == 3:
        offsets = table[:, 2]
        _first_fault((offsets < -1) | (offsets >= ends - starts), line_numbers, path,
                     "malformed narrowPeak line: summit offset (column 10) outside the peak")
        summits = np.where(offsets == -1, summits, starts + offsets)
    order = np.lexsort((starts, chrom_index))
    bounds = np.searchsorted(chrom_index[order], np.arange(len(chrom_names) + 1))
    by_chrom = {}
    for i in np.argsort(chrom_names, kind="stable"):
        rows = order[bounds[i]:bounds[i + 1]]
        by_chrom[chrom_names[i]] = Intervals(starts[rows], ends[rows], summits[rows], line_numbers[rows])
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
