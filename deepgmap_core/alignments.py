"""Aligned reads: opening BAM files with an index, and streaming read spans as numpy arrays."""

import array
import os
from dataclasses import dataclass

import numpy as np
import pysam

from .errors import InputError
from .fileio import PrivateFolder, check_readable, index_is_current

MITOCHONDRIAL = frozenset({"chrM", "chrMT", "MT", "M", "mito", "chrmt"})

# Unmapped, secondary, QC-fail, supplementary: such records are never counted.
_ALWAYS_EXCLUDED = 0x4 | 0x100 | 0x200 | 0x800
_DUPLICATE = 0x400


def is_mitochondrial(chrom):
    return chrom in MITOCHONDRIAL


@dataclass
class ReadFilter:
    """Which BAM records count as reads: mapped, primary, not QC-failed, and these settings."""

    min_mapq: int = 0
    ignore_duplicates: bool = False

    @property
    def excluded_flags(self):
        return _ALWAYS_EXCLUDED | (_DUPLICATE if self.ignore_duplicates else 0)

    def describe(self):
        text = "mapped primary reads, not QC-failed"
        if self.ignore_duplicates:
            text += ", not duplicates"
        return text + (f", MAPQ >= {self.min_mapq}" if self.min_mapq else "")


class IndexedBam(PrivateFolder):
    """A coordinate-sorted BAM with an index: the given one, one beside the file (not older
    than it), or one built in a private temporary folder (nothing is written beside the input).
    Use as a context manager."""

    def __init__(self, path, index=None, what="BAM"):
        check_readable(path, what)
        self.path = path
        index = index or next((p for p in (path + ".bai", os.path.splitext(path)[0] + ".bai", path + ".csi")
                               if index_is_current(p, path)), None)
        try:
            if index is None:
                index = self._build_index(path, what)
            self.bam = self._open(path, index, what)
        except BaseException:
            self.close()
            raise
        self.index_path = index
        self.lengths = dict(zip(self.bam.references, self.bam.lengths))

    def _open(self, path, index, what):
        quiet = pysam.set_verbosity(0)
        try:
            return pysam.AlignmentFile(path, "rb", index_filename=index)
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: cannot read the {what} with index {index} ({error})") from None
        finally:
            pysam.set_verbosity(quiet)

    def _build_index(self, path, what):
        quiet = pysam.set_verbosity(0)
        try:
            with pysam.AlignmentFile(path, "rb") as bam:
                sort_order = bam.header.to_dict().get("HD", {}).get("SO")
        except (OSError, ValueError):
            raise InputError(f"{path}: not a BAM file") from None
        finally:
            pysam.set_verbosity(quiet)
        if sort_order not in (None, "coordinate"):
            raise InputError(f"{path}: the {what} is sorted by {sort_order}, not by coordinate: "
                             f"run `samtools sort` (and `samtools index`) first")
        index = self.private_path("reads.bam.bai")
        quiet = pysam.set_verbosity(0)
        try:
            pysam.index(path, index)
        except pysam.SamtoolsError:
            raise InputError(f"{path}: cannot index the {what}: is it sorted by coordinate? "
                             f"run `samtools sort` (and `samtools index`) first") from None
        finally:
            pysam.set_verbosity(quiet)
        return index

    def mapped_per_chrom(self):
        """Mapped records per reference, from the index (no read is read)."""
        return {stat.contig: stat.mapped for stat in self.bam.get_index_statistics()}

    def read_spans(self, chrom, start, end, read_filter):
        """(starts, ends) of the counted reads whose alignment overlaps [start, end), as int64
        arrays in coordinate order. Reads stream from the index one at a time; only the two
        numbers per read are kept."""
        excluded, min_mapq = read_filter.excluded_flags, read_filter.min_mapq
        spans = array.array("q")
        keep = spans.append  # the per-read work is this loop body: keep it minimal
        for read in self.bam.fetch(chrom, start, end):
            if not read.flag & excluded and (not min_mapq or read.mapping_quality >= min_mapq):
                keep(read.reference_start)
                keep(read.reference_end)
        spans = np.frombuffer(spans, dtype=np.int64).reshape(-1, 2)
        return spans[:, 0], spans[:, 1]

    def _close_handles(self):
        if getattr(self, "bam", None) is not None:
            self.bam.close()
