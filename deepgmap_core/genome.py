"""Genome sequence: FASTA access, one-hot encoding and reverse complements.

One-hot order is A, G, C, T (the original DeepGMAP's): with this symmetric order,
reversing a one-hot matrix on both axes gives the reverse complement.
"""

import gzip
import os
import re
import shutil
import threading

import numpy as np
import pysam

from .errors import InputError
from .fileio import GZIP_MAGIC, PrivateFolder, check_readable, index_is_current, open_binary, scratch_failure
from .indexes import fasta_index_problem
from .progress import warn

ONE_HOT_ORDER = "AGCT"

# Byte -> row of _ONE_HOT_ROWS; every byte that is not A/G/C/T (either case) maps to the all-zero row.
_BASE_CODE = np.full(256, 4, dtype=np.uint8)
for _code, _base in enumerate(ONE_HOT_ORDER):
    _BASE_CODE[ord(_base)] = _BASE_CODE[ord(_base.lower())] = _code
_ONE_HOT_ROWS = np.vstack([np.eye(4), np.zeros((1, 4))])

# For counting: bytes.translate(None, ACGT) deletes the bases, leaving only the others.
ACGT_BYTES = b"ACGTacgt"
_IS_OTHER = bytes(0 if chr(byte) in "ACGTacgt" else 1 for byte in range(256))
_IS_GC = bytes(1 if chr(byte) in "GCgc" else 0 for byte in range(256))

# IUPAC nucleotide codes, and X and - (some maskers and aligners write them), in either case.
_NUCLEOTIDE_CODES = b"ACGTUNRYKMSWBDHVX-acgtunrykmswbdhvx"
_SAMPLED_SEQUENCES, _SAMPLED_BASES = 10, 10_000

_COMPLEMENT = bytes.maketrans(b"ACGTRYKMBVDHNSWacgtrykmbvdhnsw", b"TGCAYRMKVBHDNSWtgcayrmkvbhdnsw")


def _as_bytes(sequence):
    return sequence.encode("ascii") if isinstance(sequence, str) else bytes(sequence)


def base_codes(sequence):
    """Codes 0-3 for A, G, C, T (any case) and 4 for anything else, one per base, as uint8."""
    return _BASE_CODE[np.frombuffer(_as_bytes(sequence), dtype=np.uint8)]


def non_acgt_mask(sequence):
    """uint8 array, 1 where a base is not A/C/G/T (any case): N and every other letter."""
    return np.frombuffer(_as_bytes(sequence).translate(_IS_OTHER), dtype=np.uint8)


def gc_mask(sequence):
    """uint8 array, 1 where a base is G or C (any case)."""
    return np.frombuffer(_as_bytes(sequence).translate(_IS_GC), dtype=np.uint8)


def one_hot_encode(sequence, dtype=np.float32):
    """One-hot matrix (length, 4) in A, G, C, T order; N and other letters are all zeros."""
    return _ONE_HOT_ROWS.astype(dtype)[base_codes(sequence)]


def one_hot_windows(genome, chroms, starts, window, dtype=np.float32):
    """One-hot batch (n, window, 4) of the windows [start, start + window) read from `genome`.

    The sequences are joined and encoded in one vectorised step; only the reads are per window.
    """
    joined = b"".join(genome.fetch(chrom, int(start), int(start) + window) for chrom, start in zip(chroms, starts))
    if len(joined) != len(starts) * window:
        raise InputError(f"{genome.path}: some windows of {window} bp run past their chromosome's end")
    return _ONE_HOT_ROWS.astype(dtype)[base_codes(joined)].reshape(len(starts), window, 4)


def reverse_complement(sequence):
    """Reverse complement of a DNA string (IUPAC codes complemented, case kept)."""
    complemented = _as_bytes(sequence).translate(_COMPLEMENT)[::-1]
    return complemented.decode("ascii") if isinstance(sequence, str) else complemented


def reverse_complement_one_hot(one_hot):
    """Reverse complement of one-hot arrays (..., length, 4): reversed on positions and channels."""
    return one_hot[..., ::-1, ::-1]


def _is_bgzf(path):
    """True for BGZF (bgzip) files: gzip members that carry the 'BC' extra subfield."""
    with open(path, "rb") as handle:
        header = handle.read(18)
    return len(header) == 18 and header[:2] == GZIP_MAGIC and header[3] & 4 and header[12:14] == b"BC"


class Genome(PrivateFolder):
    """Random access to a genome FASTA: plain, gzip or bgzip.

    An existing `.fai` (and `.gzi` for bgzip) beside the file is used unless it is older than
    the file or its content does not fit the file (indexes.fasta_index_problem); otherwise the
    index is built in a private temporary folder, so read-only inputs (as in Galaxy) work and
    nothing is written beside them. A plain-gzip FASTA is first decompressed there.
    Use as a context manager, or call close().
    """

    def __init__(self, path):
        check_readable(path, "genome FASTA")
        self.path = path
        self._local = threading.local()
        self._readers = []
        try:
            self._fasta = self._open_indexed(path)
            self.lengths = dict(zip(self._fasta.references, self._fasta.lengths))
            if not self.lengths:
                raise InputError(f"{path}: no sequences in the genome FASTA")
            self._check_nucleotides()
        except BaseException:
            self.close()
            raise

    def _check_nucleotides(self):
        """InputError for a FASTA of proteins (or other text): the first bases of its first
        sequences, mostly letters no nucleotide code has, would give windows of N and an empty
        table or blank tracks."""
        sample = b"".join(self._fasta.fetch(name, 0, min(length, _SAMPLED_BASES)).encode("latin-1")
                          for name, length in list(self.lengths.items())[:_SAMPLED_SEQUENCES])
        foreign = sample.translate(None, _NUCLEOTIDE_CODES)
        if len(foreign) > 0.1 * len(sample):
            letters = "".join(sorted(set(foreign.decode("latin-1"))))[:10]
            raise InputError(f"{self.path}: not a nucleotide FASTA: {len(foreign) / len(sample):.0%} of the first "
                             f"bases are letters no nucleotide code has ({letters}): a protein FASTA?")

    def _open_indexed(self, path):
        with open_binary(path, "genome FASTA") as source:
            compressed = isinstance(source, gzip.GzipFile)
            if source.skipped_bom or (compressed and not _is_bgzf(path)):  # a private copy samtools indexes
                plain = self.private_path("genome.fa")
                try:
                    with open(plain, "wb") as target:
                        shutil.copyfileobj(source, target, 16 << 20)
                except OSError as error:  # a bad gzip stream is an InputError of open_binary's
                    scratch = scratch_failure(error, self._tmpdir)  # the copy's folder, not the FASTA, at fault
                    raise InputError(f"{path}: copying the genome FASTA, {scratch}" if scratch else
                                     f"{path}: cannot copy the genome FASTA to a temporary folder ({error})") from None
                path, compressed = plain, False
        fai, gzi = path + ".fai", (path + ".gzi" if compressed else None)
        if not self._index_fits(path, fai, gzi):
            fai = self.private_path("index.fai")
            gzi = self.private_path("index.gzi") if compressed else None
            index_args = ["--fai-idx", fai] + (["--gzi-idx", gzi] if gzi else [])
            if os.path.getsize(path) == 0:
                raise InputError(f"{self.path}: the genome FASTA is empty")
            self._build_index(path, index_args)
        self._files = (path, fai, gzi)
        try:
            return self._open_reader()
        except (OSError, ValueError) as error:
            raise InputError(f"{self.path}: cannot open the genome FASTA ({error})") from None

    def _index_fits(self, path, fai, gzi):
        """The index beside the FASTA is used if it is not older than the file and its content fits it."""
        if not all(index_is_current(index, path) for index in (fai, gzi) if index):
            return False
        problem = fasta_index_problem(path, fai, gzi)
        if problem:
            warn(f"{fai}{' and ' + gzi if gzi else ''}: not the index of {self.path} ({problem}): "
                 f"indexing it privately instead")
        return not problem

    def _build_index(self, path, index_args):
        """samtools faidx, its messages kept off stderr (our one-line error replaces them) and read:
        for a second record of one name it keeps the first and only warns, and reads of that
        chromosome would silently miss the second."""
        messages = self.private_path("faidx.log")
        saved = os.dup(2)
        try:
            with open(messages, "w") as log:
                os.dup2(log.fileno(), 2)
                pysam.faidx(path, *index_args)
        except pysam.SamtoolsError:
            raise InputError(f"{self.path}: not a valid FASTA file (samtools faidx cannot index it)") from None
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        duplicate = re.search(r'Ignoring duplicate sequence "([^"]*)"', open(messages).read())
        if duplicate:
            raise InputError(f"{self.path}: two sequences named {duplicate.group(1)} (FASTA names must be unique)")

    @property
    def indexed_files(self):
        """(FASTA, .fai, .gzi or None) as read: the FASTA is a private copy for plain gzip."""
        return self._files

    def _open_reader(self):
        path, fai, gzi = self._files
        return pysam.FastaFile(path, filepath_index=fai, filepath_index_compressed=gzi)

    @property
    def names(self):
        """Sequence names in FASTA order."""
        return list(self.lengths)

    def fetch(self, chrom, start, end):
        """Bases [start, end) of `chrom` as bytes, in the FASTA's case. Thread-safe: each
        thread reads through its own handle (htslib handles must not be shared)."""
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = self._open_reader()
            self._readers.append(reader)
        return reader.fetch(chrom, start, end).encode("ascii")

    def _close_handles(self):
        for reader in self._readers + [getattr(self, "_fasta", None)]:
            if reader is not None:
                reader.close()
        self._readers = []
