"""Whether an index found for a FASTA or BAM file belongs to it.

A time stamp only says that an index was written after its file: the index of another file (copied,
or made for a file since replaced under the same name) can be newer and still wrong, and read
through it a FASTA gives other bases and a BAM no reads or a 'truncated file'. These checks compare
an index with the bytes it points at, cheaply (a few reads per sequence, for at most SAMPLED of them):
each returns None for an index that fits, else the reason it does not.
"""

import bisect
import contextlib
import gzip
import os
import re
import struct
import zlib

import numpy as np
import pysam

SAMPLED = 1000       # sequences checked; beyond that, evenly spaced ones and the last
_MAX_HEADER = 1 << 16  # a FASTA header line longer than this is taken as a mismatch (then indexed afresh)
_BGZF_HEADER = b"\x1f\x8b\x08\x04"


class _Mismatch(Exception):
    """The index does not fit its file; the message says how."""


def _sampled(count):
    if count <= SAMPLED:
        return range(count)
    return sorted(set(np.linspace(0, count - 1, SAMPLED).astype(int).tolist()))


class _PlainBytes:
    def __init__(self, path):
        self._handle = open(path, "rb")

    def read(self, start, length):
        self._handle.seek(start)
        return self._handle.read(length)

    def close(self):
        self._handle.close()


def _bgzf_blocks(path):
    """Compressed and uncompressed start of each BGZF block of `path`, walked from their headers,
    and the two sizes as the last entries."""
    size, compressed, uncompressed = os.path.getsize(path), 0, 0
    starts, offsets = [], []
    with open(path, "rb") as handle:
        while compressed < size:
            handle.seek(compressed)
            header = handle.read(18)
            if len(header) < 18 or header[:4] != _BGZF_HEADER or header[12:14] != b"BC":
                raise _Mismatch(f"no BGZF block at byte {compressed} of the compressed file")
            block_size = struct.unpack_from("<H", header, 16)[0] + 1
            if compressed + block_size > size:
                raise _Mismatch("the compressed file is cut short")
            handle.seek(compressed + block_size - 4)
            starts.append(compressed)
            offsets.append(uncompressed)
            compressed, uncompressed = compressed + block_size, uncompressed + struct.unpack("<I", handle.read(4))[0]
    return starts + [compressed], offsets + [uncompressed]


class _BgzfBytes:
    """Uncompressed bytes of a BGZF file at any offset, its blocks found by walking their headers
    (so a .gzi can be checked against them)."""

    def __init__(self, path):
        self._starts, self._offsets = _bgzf_blocks(path)
        self.blocks = dict(zip(self._starts, self._offsets))   # compressed -> uncompressed start of each block
        self._cached = (None, b"")
        self._handle = open(path, "rb")

    def _block(self, index):
        if self._cached[0] != index:
            self._handle.seek(self._starts[index])
            data = self._handle.read(self._starts[index + 1] - self._starts[index])
            try:
                self._cached = (index, zlib.decompress(data[18:-8], -15))
            except zlib.error as error:
                raise _Mismatch(f"block at byte {self._starts[index]} cannot be decompressed ({error})") from None
        return self._cached[1]

    def read(self, start, length):
        index = bisect.bisect_right(self._offsets, start) - 1
        pieces, wanted = [], length
        while wanted > 0 and 0 <= index < len(self._starts) - 1:
            data = self._block(index)[max(start - self._offsets[index], 0):]
            pieces.append(data[:wanted])
            wanted -= len(pieces[-1])
            index += 1
        return b"".join(pieces)

    def close(self):
        self._handle.close()


def fasta_index_problem(path, fai, gzi=None):
    """None when `fai` (and `gzi`, for a bgzip FASTA) fit the FASTA `path`, else why not.

    Checked for every sequence (SAMPLED of them in a larger genome): the `.fai` line's offset
    follows a `>name` header line naming it, just after the previous sequence's last base;
    its first line holds exactly the `.fai`'s bases per line and its line ending; its last
    line ends where the length says; after the last sequence only the file's end follows. A
    `.gzi` must list offsets at which this file's BGZF blocks start."""
    try:
        data = _BgzfBytes(path) if gzi else _PlainBytes(path)
    except (_Mismatch, OSError) as error:
        return str(error)
    try:
        if gzi:
            _check_gzi(gzi, data.blocks)
        _check_fai(_read_fai(fai), data)
    except (_Mismatch, OSError) as error:
        return str(error)
    finally:
        data.close()
    return None


def _check_gzi(gzi, blocks):
    with open(gzi, "rb") as handle:
        raw = handle.read()
    count = struct.unpack_from("<Q", raw)[0] if len(raw) >= 8 else -1
    if count < 0 or len(raw) != 8 + 16 * count:
        raise _Mismatch(f"{gzi} is not a .gzi of {count if count >= 0 else 'any'} entries")
    entries = np.frombuffer(raw, dtype="<u8", offset=8).reshape(-1, 2)
    for compressed, uncompressed in entries.tolist():
        if blocks.get(compressed) != uncompressed:
            raise _Mismatch(f"its .gzi lists a block at byte {compressed}, where the file has none")


def _read_fai(fai):
    records = []
    with open(fai, "rb") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip(b"\r\n").split(b"\t")
            try:
                name, numbers = fields[0], [int(field) for field in fields[1:5]]
            except ValueError:
                numbers = []
            if len(numbers) != 4 or min(numbers) < 0 or numbers[3] < numbers[2] or not name:
                raise _Mismatch(f"line {number} is not a .fai line (name, length, offset, bases and bytes per line)")
            records.append((name, *numbers))
    if not records:
        raise _Mismatch("it is empty")
    return sorted(records, key=lambda record: record[2])


def _last_base_end(record):
    """Offset just past the record's last base."""
    _, length, offset, line_bases, line_width = record
    if length == 0:
        return offset
    if line_bases == 0:
        raise _Mismatch(f"it gives {record[0].decode(errors='replace')} bases but 0 bases per line")
    return offset + (length - 1) // line_bases * line_width + (length - 1) % line_bases + 1


def _check_fai(records, data):
    for i in _sampled(len(records)):
        name, length, offset, line_bases, line_width = records[i]
        shown = name.decode(errors="replace")
        header_start = _last_base_end(records[i - 1]) if i else 0
        if not 0 <= offset - header_start <= _MAX_HEADER:
            raise _Mismatch(f"{shown} starts at byte {offset}, not after a header line following the previous sequence")
        header = data.read(header_start, offset - header_start)
        # blank lines and the headers of empty sequences (samtools leaves those out) may come first
        if not re.fullmatch(rb"(?:\r?\n|>[^\n]*\n)*>" + re.escape(name) + rb"(?:[ \t\v\f][^\n]*)?\r?\n", header):
            raise _Mismatch(f"byte {offset} does not follow a '>{shown}' header line")
        if length:
            line_break = {1: b"\n", 2: b"\r\n"}.get(line_width - line_bases, b"?")
            first = data.read(offset, line_width)
            if not _is_line(first, line_bases, line_break, length <= line_bases):
                raise _Mismatch(f"{shown}'s first line does not hold {line_bases} bases in {line_width} bytes")
            last_line = offset + (length - 1) // line_bases * line_width
            end = _last_base_end(records[i])
            if not _is_line(data.read(last_line, end - last_line + len(line_break)), end - last_line, line_break, True):
                raise _Mismatch(f"{shown}'s last line does not end after {length} bases")
    end = _last_base_end(records[-1])
    rest = data.read(end, _MAX_HEADER + 1)
    if len(rest) > _MAX_HEADER or rest.strip():
        raise _Mismatch(f"the file goes on after its last sequence ({records[-1][0].decode(errors='replace')})")


def _is_line(line, bases, line_break, may_end_file):
    """`line` is `bases` bytes of sequence (no line break, no header) and then `line_break` (or
    the file's end, where `may_end_file`)."""
    if len(line) < bases or re.search(rb"[\r\n>]", line[:bases]):
        return False
    return line[bases:] == line_break or (may_end_file and len(line) == bases)


# BAM indexes (.bai, .csi) ---------------------------------------------------------------------

def bam_index_problem(path, index, lengths):
    """None when the BAM index `index` (.bai or .csi) fits the BAM `path` whose header gives
    `lengths` (reference name -> length, in order), else why not.

    The index must be whole and list as many references as the header, with no bin beyond a
    reference's length; for every reference with reads (SAMPLED of them at most), the first read
    its summary points at lies on that reference, and the read after its last one does not."""
    try:
        with open(index, "rb") as handle:
            raw = handle.read()
        if raw[:2] == b"\x1f\x8b":   # a .csi is BGZF-compressed
            raw = gzip.decompress(raw)
        references = _parse_bam_index(raw)
    except (OSError, EOFError, zlib.error, struct.error, _Mismatch) as error:
        return f"not a whole BAM index ({error})"
    if len(references) != len(lengths):
        return f"it lists {len(references)} references, the BAM header {len(lengths)}"
    for (bin_starts, _), (name, length) in zip(references, lengths.items()):
        if bin_starts and max(bin_starts) >= max(length, 1):
            return f"it has reads at {max(bin_starts):,} on {name}, past its length {length:,}"
    return _check_read_spans(path, [(tid, span) for tid, (_, span) in enumerate(references) if span])


def _parse_bam_index(raw):
    """Per reference: the starts of its bins and its (first, past-last) read virtual offsets or None."""
    if raw[:4] == b"BAI\x01":
        min_shift, depth, position = 14, 5, 4
    elif raw[:4] == b"CSI\x01":
        min_shift, depth, aux = struct.unpack_from("<iii", raw, 4)
        position = 16 + aux
    else:
        raise _Mismatch("no BAI or CSI magic")
    pseudo_bin = ((1 << (3 * (depth + 1))) - 1) // 7 + 1
    level_firsts = [((1 << (3 * level)) - 1) // 7 for level in range(depth + 1)]
    csi = raw[:4] == b"CSI\x01"
    (n_ref,) = struct.unpack_from("<i", raw, position)
    position += 4
    references = []
    for _ in range(_count(n_ref, raw, position)):
        n_bin = _count(struct.unpack_from("<i", raw, position)[0], raw, position)
        position += 4
        starts, span = [], None
        for _ in range(n_bin):
            bin_number = struct.unpack_from("<I", raw, position)[0]
            position += 12 if csi else 4
            n_chunk = _count(struct.unpack_from("<i", raw, position)[0], raw, position)
            if bin_number == pseudo_bin:
                span = struct.unpack_from("<QQ", raw, position + 4)
            else:
                level = bisect.bisect_right(level_firsts, bin_number) - 1
                starts.append((bin_number - level_firsts[level]) << (min_shift + 3 * (depth - level)))
            position += 4 + 16 * n_chunk
        if not csi:
            n_intv = _count(struct.unpack_from("<i", raw, position)[0], raw, position)
            position += 4 + 8 * n_intv
        references.append((starts, span))
    if len(raw) < position:
        raise _Mismatch("it ends early")
    if len(raw) not in (position, position + 8):
        raise _Mismatch(f"{len(raw) - position} bytes after its last reference")
    return references


def _count(number, raw, position):
    """A count read from the index at `position`: one that cannot be (negative, or more 4-byte
    items than bytes left) means another kind of file, and would loop for long."""
    if not 0 <= number <= (len(raw) - position) // 4:
        raise _Mismatch(f"a count of {number} at byte {position}")
    return number


def _check_read_spans(path, spans):
    size = os.path.getsize(path)
    quiet = pysam.set_verbosity(0)
    bam = None
    try:
        bam = pysam.AlignmentFile(path, "rb", check_sq=False)
        for i in [*_sampled(len(spans)), len(spans) - 1] if spans else []:
            tid, (first, past_last) = spans[i]
            name = bam.get_reference_name(tid)
            if max(first, past_last) >> 16 > size:
                return f"it points past the end of the BAM for {name}"
            if _read_at(bam, first) != tid:
                return f"its first read of {name} is not a read of {name}"
            if _read_at(bam, past_last) == tid:
                return f"its last read of {name} is not the last one"
    except (OSError, ValueError) as error:
        return f"no read where it points ({error})"
    finally:
        if bam is not None:
            with contextlib.suppress(OSError):   # after a failed read, htslib's close fails too
                bam.close()
        pysam.set_verbosity(quiet)
    return None


def _read_at(bam, virtual_offset):
    """Reference id of the record at `virtual_offset`, or None at the end of the file."""
    bam.seek(virtual_offset)
    read = next(bam, None)
    return None if read is None else read.reference_id
