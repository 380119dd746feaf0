"""Aligned reads: opening BAM files with an index, and streaming read spans as numpy arrays."""

import array
import os
from dataclasses import dataclass

import numpy as np
import pysam

from .errors import InputError
from .fileio import PrivateFolder, check_readable, index_is_current
from .genome import Genome
from .indexes import bam_index_problem
from .progress import warn

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
    than it, and fitting it: indexes.bam_index_problem), or one built in a private temporary folder
    (nothing is written beside the input). A CRAM is read with its `reference` genome FASTA into
    a private BAM (`reads_path`; MACS3 reads BAM, not CRAM). Use as a context manager."""

    def __init__(self, path, index=None, what="BAM", reference=None):
        check_readable(path, what)
        self.path = self.reads_path = path
        try:
            if _is_cram(path):
                self.reads_path, index = self._bam_of_cram(path, what, reference), None
            index = self._usable_index(index, what)
            self.bam = self._open(self.reads_path, index, what)
        except BaseException:
            self.close()
            raise
        self.index_path = index
        self.lengths = dict(zip(self.bam.references, self.bam.lengths))

    def _usable_index(self, given, what):
        """The index given (refused if it does not fit), else the first one beside the file that is
        current and fits (one that does not is passed over, saying so), else a private one."""
        path = self.reads_path
        candidates = [given] if given else [p for p in (path + ".bai", os.path.splitext(path)[0] + ".bai",
                                                        path + ".csi") if index_is_current(p, path)]
        lengths = None
        for index in candidates:
            lengths = lengths or _header_lengths(path, what)
            problem = bam_index_problem(path, index, lengths)
            if not problem:
                return index
            if given:
                raise InputError(f"{index}: not the index of {path} ({problem}): index the {what} again or leave "
                                 f"the index out")
            warn(f"{index}: not the index of {path} ({problem}): indexing the {what} privately instead")
        return self._build_index(path, what)

    def _bam_of_cram(self, path, what, reference):
        if reference is None:
            raise InputError(f"{path}: the {what} is CRAM: give the genome FASTA it was aligned to with --reference "
                             f"(or convert it with `samtools view -b`)")
        with Genome(reference) as genome:
            # htslib finds a reference's index beside it: links in the private folder point at the
            # FASTA and at the index the Genome checked or built, so nothing is written beside the input.
            linked = self.private_path("reference.fa")
            for source, suffix in zip(genome.indexed_files, ("", ".fai", ".gzi")):
                if source:
                    os.symlink(os.path.abspath(source), linked + suffix)
            missing = [name for name, length in _header_lengths(path, what).items()
                       if genome.lengths.get(name) != length]
            if missing:
                raise InputError(f"{reference}: not the genome {path} was aligned to ({missing[0]} is missing or of "
                                 f"another length)")
            bam = self.private_path("reads.bam")
            quiet = pysam.set_verbosity(0)
            try:
                pysam.view("-b", "-T", linked, "-o", bam, path, catch_stdout=False)
            except pysam.SamtoolsError as error:   # its value: "... stdout=..., stderr=MESSAGES"
                last = (str(error.value).split("stderr=")[-1].strip().splitlines() or ["no message"])[-1]
                raise InputError(f"{path}: cannot read the CRAM with the reference {reference} ({last}): is it the "
                                 f"genome the reads were aligned to?") from None
            finally:
                pysam.set_verbosity(quiet)
        return bam

    def check_paired(self, what="BAM", first=1000):
        """Refuse a BAM read as pairs when none of its first mapped primary reads is paired (MACS3's
        paired-end mode would stop on an AssertionError)."""
        with pysam.AlignmentFile(self.reads_path, "rb") as bam:   # its own handle: read from the first record
            reads = (read for read in bam.fetch(until_eof=True) if not read.flag & _ALWAYS_EXCLUDED)
            checked = [read.is_paired for _, read in zip(range(first), reads)]
        if checked and not any(checked):
            raise InputError(f"{self.path}: --paired, but the {what} has no paired reads (none of its first "
                             f"{len(checked):,} mapped reads is): leave --paired out for single-end reads")

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
            raise InputError(f"{self.path}: not a BAM file") from None
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
                read_start, read_end = read.reference_start, read.reference_end
                keep(read_start)
                keep(read_start + 1 if read_end is None else read_end)   # no CIGAR: 1 bp, as htslib's bam_endpos
        spans = np.frombuffer(spans, dtype=np.int64).reshape(-1, 2)
        return spans[:, 0], spans[:, 1]

    def _close_handles(self):
        if getattr(self, "bam", None) is not None:
            self.bam.close()


def _is_cram(path):
    with open(path, "rb") as handle:
        return handle.read(4) == b"CRAM"


def _header_lengths(path, what):
    """Reference name -> length from the header of a BAM or CRAM."""
    quiet = pysam.set_verbosity(0)
    try:
        with pysam.AlignmentFile(path, check_sq=False) as reads:
            return dict(zip(reads.references, reads.lengths))
    except (OSError, ValueError):
        raise InputError(f"{path}: not a {what} file") from None
    finally:
        pysam.set_verbosity(quiet)
