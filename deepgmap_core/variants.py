"""Variant effects: a model's predictions for the window centred on a variant, with the
reference allele and with the alternative allele.

Each allele sits in the middle of its own window: (window - len(allele)) // 2 bases of the
genome to its left, the rest to its right (after the reference allele's end), so SNVs and
short indels are scored alike and every window has the model's size; bases past a
chromosome's end are N (all-zero one-hot rows).

The VCF is read and written as text, record by record, in chunks: memory is flat in its
size, every input record is written out, and a malformed line is reported with its number.
"""

import os
import re
from dataclasses import dataclass, field

import numpy as np

from .calibration import genome_probabilities
from .errors import InputError
from .genome import one_hot_encode
from .interpret import gradient_saliency
from .predict import predict_batch
from .progress import ProgressBar

SCORED = "scored"
REF_MISMATCH = "ref_mismatch"
NOT_SCORED_REASONS = {
    REF_MISMATCH: "REF does not match the genome",
    "multiallelic": "more than one ALT allele",
    "symbolic": "symbolic, breakend or missing ALT allele (structural variant)",
    "no_change": "ALT equals REF",
    "too_long": "an allele longer than the model's window",
    "chrom_not_in_genome": "chromosome not in the genome",
    "outside_chrom": "REF outside the chromosome (POS 0, or past its end)",
}
INFO_PREFIX = "DGM_"
_ALLELE = re.compile(r"^[ACGTNacgtn]+$")
_INFO_ID_CHARACTERS = re.compile(r"[^0-9A-Za-z_.]")
ASSEMBLY_CHECK_RECORDS = 100   # the REF check that stops a VCF of another assembly looks at this many records
CLIP = 1e-7                    # probabilities are clipped to [CLIP, 1 - CLIP] for the log-odds


@dataclass
class VcfRecord:
    line_number: int
    columns: list
    status: str = SCORED
    values: dict = field(default_factory=dict)   # INFO key -> formatted value

    @property
    def chrom(self):
        return self.columns[0]

    @property
    def start(self):
        """0-based start of REF."""
        return int(self.columns[1]) - 1

    @property
    def ref(self):
        return self.columns[3]

    @property
    def alts(self):
        return self.columns[4].split(",")


class VcfReader:
    """Header lines, then records of a VCF (plain or gzip) as `VcfRecord`s; malformed lines
    raise InputError with the file and line."""

    def __init__(self, stream, path):
        self.stream, self.path = stream, path
        self.meta, self.column_line, self.line_number = [], None, 0
        for line in stream:
            self.line_number += 1
            line = line.rstrip("\r\n")
            if line.startswith("##"):
                self.meta.append(line)
            elif line.startswith("#"):
                self.column_line = line
                break
            elif line.strip():
                raise InputError(f"{path}:{self.line_number}: a VCF record before the #CHROM header line")
        if self.column_line is None:
            raise InputError(f"{path}: empty VCF (no #CHROM header line)" if self.line_number == 0 else
                             f"{path}: not a VCF file (no #CHROM header line)")
        if not self.column_line.startswith("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"):
            raise InputError(f"{path}:{self.line_number}: the header line must start with the 8 tab-separated "
                             f"columns #CHROM POS ID REF ALT QUAL FILTER INFO")

    def _raw_file(self):
        """The file under the text stream (under the decompressor for gzip)."""
        buffer = self.stream.buffer
        return getattr(buffer, "fileobj", buffer)

    def size(self):
        """Bytes of the file (compressed for gzip; 0 for a pipe), for progress."""
        return os.fstat(self._raw_file().fileno()).st_size

    def position(self):
        """Bytes of the file read so far (compressed bytes for gzip), for progress."""
        return self._raw_file().tell()

    def records(self):
        for line in self.stream:
            self.line_number += 1
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            columns = line.split("\t")
            where = f"{self.path}:{self.line_number}"
            if len(columns) < 8:
                raise InputError(f"{where}: {len(columns)} tab-separated columns, a VCF record has at least 8")
            if not columns[1].isdigit():
                raise InputError(f"{where}: POS {columns[1]!r} is not a positive integer")
            if not _ALLELE.match(columns[3]):
                raise InputError(f"{where}: REF {columns[3]!r} is not a DNA sequence")
            if not columns[4]:
                raise InputError(f"{where}: empty ALT column")
            yield VcfRecord(self.line_number, columns)


def info_id(class_name):
    """A class name as the part of an INFO key VCF allows ([0-9A-Za-z_.])."""
    return _INFO_ID_CHARACTERS.sub("_", class_name)


def info_keys(class_names, saliency):
    """(key, Number, Type, Description) of every INFO field this tool writes."""
    reasons = "; ".join(f"{key}: {text}" for key, text in NOT_SCORED_REASONS.items())
    keys = [(f"{INFO_PREFIX}STATUS", "1", "String", f"DeepGMAP score-variants: scored, or why not ({reasons})")]
    for name in class_names:
        stem = f"{INFO_PREFIX}{info_id(name)}"
        keys += [(f"{stem}_REF", "1", "Float", f"Predicted probability of {name}, reference allele"),
                 (f"{stem}_ALT", "1", "Float", f"Predicted probability of {name}, alternative allele"),
                 (f"{stem}_DIFF", "1", "Float", f"ALT - REF predicted probability of {name}"),
                 (f"{stem}_LOGOR", "1", "Float", f"Log odds ratio of {name}: logit(ALT) - logit(REF) (natural log)")]
        if saliency:
            keys += [(f"{stem}_SAL", "1", "Float",
                      f"Saliency of {name} at the variant: the corrected gradient x input (d(logit)/d(input) at "
                      f"the REF base minus its mean over the four bases), the REF base of largest magnitude"),
                     (f"{stem}_SALRANK", "1", "Float",
                      f"Fraction of the {saliency} bases around the variant (itself included) whose {name} saliency is "
                      f"at most as large in magnitude (1: the variant hits the most salient base)")]
    return keys


def check_chromosome_names(genome, chrom, where):
    """InputError when `chrom` is missing but the genome has it under the other naming (chr1 vs 1)."""
    alias = {"chrM": "MT", "MT": "chrM"}.get(chrom, chrom[3:] if chrom.startswith("chr") else "chr" + chrom)
    if alias in genome.lengths:
        raise InputError(f"{where}: chromosome {chrom!r} is not in the genome, which names it {alias!r}: rename the "
                         f"VCF's chromosomes (bcftools annotate --rename-chrs) or use a genome named as the VCF")


def classify(record, genome, window):
    """The record's status before scoring: SCORED if it can be scored, else why not."""
    alts = record.alts
    if len(alts) > 1:
        return "multiallelic"
    if not _ALLELE.match(alts[0]):
        return "symbolic"
    if record.chrom not in genome.lengths:
        return "chrom_not_in_genome"
    if max(len(record.ref), len(alts[0])) > window:
        return "too_long"
    if record.start < 0 or record.start + len(record.ref) > genome.lengths[record.chrom]:
        return "outside_chrom"
    if alts[0].upper() == record.ref.upper():
        return "no_change"
    reference = genome.fetch(record.chrom, record.start, record.start + len(record.ref)).upper()
    given = record.ref.upper().encode("ascii")
    if any(g != r and g != ord("N") for g, r in zip(given, reference)):
        return REF_MISMATCH
    return SCORED


def _fetch_padded(genome, chrom, start, end):
    """Bases [start, end) with N where the range leaves the chromosome."""
    length = genome.lengths[chrom]
    inside = genome.fetch(chrom, max(start, 0), min(end, length))
    return b"N" * max(-start, 0) + inside + b"N" * max(end - length, 0)


def allele_window(genome, chrom, start, ref_length, allele, window):
    """The window's bases with `allele` in the middle, replacing REF [start, start + ref_length)."""
    left = (window - len(allele)) // 2
    right = window - left - len(allele)
    end = start + ref_length
    return (_fetch_padded(genome, chrom, start - left, start) + allele.upper().encode("ascii")
            + _fetch_padded(genome, chrom, end, end + right))


def log_odds(probabilities):
    clipped = np.clip(probabilities, CLIP, 1 - CLIP)
    return np.log(clipped / (1 - clipped))


def saliency_at_variants(model, x_ref, ref_lengths, window, n_classes, neighbourhood):
    """(saliency at the variant, rank among the `neighbourhood` bases around it) per record and class,
    from the reference windows x_ref (n, window, 4); see info_keys for the definitions."""
    n = len(x_ref)
    values, ranks = np.zeros((n, n_classes)), np.zeros((n, n_classes))
    lefts = (window - ref_lengths) // 2
    saliency = gradient_saliency(model, x_ref, n_classes)
    classes = np.arange(n_classes)
    for i in range(n):
        at_variant = saliency[i, lefts[i]:lefts[i] + ref_lengths[i]]
        values[i] = at_variant[np.argmax(np.abs(at_variant), axis=0), classes]
        middle = lefts[i] + ref_lengths[i] // 2
        around = saliency[i, max(middle - neighbourhood // 2, 0):middle - neighbourhood // 2 + neighbourhood]
        ranks[i] = np.mean(np.abs(around) <= np.abs(values[i]), axis=0)
    return values, ranks


class VariantScorer:
    """Scores chunks of records in place: INFO values for scored records, a status for all."""

    def __init__(self, model, info, genome, settings):
        self.model, self.info, self.genome, self.settings = model, info, genome, settings
        self.window = info.window
        self.class_ids = [info_id(name) for name in info.class_names]
        self.counts = {SCORED: 0, **{reason: 0 for reason in NOT_SCORED_REASONS}}
        self.checked_refs = 0
        self.checked_names = set()

    def classify_chunk(self, records, path):
        for record in records:
            if record.chrom not in self.genome.lengths and record.chrom not in self.checked_names:
                self.checked_names.add(record.chrom)
                check_chromosome_names(self.genome, record.chrom, f"{path}:{record.line_number}")
            record.status = classify(record, self.genome, self.window)
            self.counts[record.status] += 1
            if record.status in (SCORED, REF_MISMATCH):
                self.checked_refs += 1
                if self.checked_refs == ASSEMBLY_CHECK_RECORDS:
                    self.check_assembly(path)

    def check_assembly(self, path):
        """InputError when most checked REF alleles differ from the genome (a VCF of another assembly)."""
        mismatches = self.counts[REF_MISMATCH]
        if self.checked_refs and mismatches > self.settings.max_ref_mismatch * self.checked_refs:
            raise InputError(f"{path}: {mismatches} of the first {self.checked_refs} REF alleles do not match the "
                             f"genome {self.genome.path}: is the VCF on another assembly?")

    def score_chunk(self, records):
        scored = [r for r in records if r.status == SCORED]
        if not scored:
            return
        windows = []
        for record in scored:
            windows.append(allele_window(self.genome, record.chrom, record.start, len(record.ref), record.ref,
                                         self.window))
            windows.append(allele_window(self.genome, record.chrom, record.start, len(record.ref), record.alts[0],
                                         self.window))
        x = one_hot_encode(b"".join(windows)).reshape(len(windows), self.window, 4)
        batch = self.settings.batch_size
        y = np.concatenate([predict_batch(self.model, x[i:i + batch], self.settings.rc_average)
                            for i in range(0, len(x), batch)]).astype(np.float64)
        y = genome_probabilities(y, self.info)   # a prior shift: LOGOR stays the same, REF, ALT and DIFF do not
        ref, alt = y[0::2], y[1::2]
        log_ratio = log_odds(alt) - log_odds(ref)
        columns = {"REF": ref, "ALT": alt, "DIFF": alt - ref, "LOGOR": log_ratio}
        if self.settings.saliency_window:
            ref_lengths = np.array([len(r.ref) for r in scored])
            columns["SAL"], columns["SALRANK"] = saliency_at_variants(
                self.model, x[0::2], ref_lengths, self.window, len(self.class_ids), self.settings.saliency_window)
        for i, record in enumerate(scored):
            for class_index, class_id in enumerate(self.class_ids):
                for suffix, values in columns.items():
                    record.values[f"{INFO_PREFIX}{class_id}_{suffix}"] = f"{values[i, class_index]:.6g}"


def output_header(reader, genome, class_names, settings, provenance):
    """The input's meta lines (without earlier DGM_ INFO definitions), contigs of the genome the
    VCF does not declare, this tool's INFO definitions and provenance, and the #CHROM line."""
    meta = [line for line in reader.meta if not line.startswith(f"##INFO=<ID={INFO_PREFIX}")]
    if not meta or not meta[0].startswith("##fileformat="):
        meta.insert(0, "##fileformat=VCFv4.2")
    declared = {m.group(1) for m in (re.match(r"##contig=<ID=([^,>]+)", line) for line in meta) if m}
    meta += [f"##contig=<ID={name},length={length}>" for name, length in genome.lengths.items()
             if name not in declared]
    meta += [f'##INFO=<ID={key},Number={number},Type={kind},Description="{text}">'
             for key, number, kind, text in info_keys(class_names, settings.saliency_window)]
    meta += [f"##deepgmap_{key}={value}" for key, value in provenance.items()]
    return "\n".join(meta + [reader.column_line]) + "\n"


def record_line(record):
    """The record with this tool's INFO values appended (earlier DGM_ values dropped)."""
    columns = list(record.columns)
    info = [item for item in columns[7].split(";") if item and item != "." and not item.startswith(INFO_PREFIX)]
    info.append(f"{INFO_PREFIX}STATUS={record.status}")
    info += [f"{key}={value}" for key, value in record.values.items()]
    columns[7] = ";".join(info)
    return "\t".join(columns) + "\n"


def tsv_header(keys, provenance):
    """Provenance lines and the column names: one per INFO key, DGM_<class>_REF -> <class>_ref."""
    names = []
    for key in keys:
        class_id, suffix = key[len(INFO_PREFIX):].rsplit("_", 1)
        names.append(f"{class_id}_{suffix.lower()}")
    lines = [f"##{key}={value}" for key, value in provenance.items()]
    return "\n".join(lines + ["#" + "\t".join(["chrom", "pos", "id", "ref", "alt", "status"] + names)]) + "\n"


def tsv_line(record, keys):
    values = [record.values.get(key, "NA") for key in keys]
    return "\t".join(record.columns[:5] + [record.status] + values) + "\n"


def score_vcf(reader, model, info, genome, settings, vcf_stream, tsv_stream=None, provenance=None):
    """Score every record of `reader` and write the annotated VCF (and TSV) as text streams of
    bytes; returns the counts per status."""
    settings.check()
    provenance = provenance or {}
    scorer = VariantScorer(model, info, genome, settings)
    class_names = info.class_names
    keys = [key for key, *_ in info_keys(class_names, settings.saliency_window)[1:]]
    vcf_stream.write(output_header(reader, genome, class_names, settings, provenance).encode())
    if tsv_stream is not None:
        tsv_stream.write(tsv_header(keys, provenance).encode())
    records = reader.records()
    with ProgressBar(reader.size(), "scoring variants", "bytes") as bar:
        while True:
            chunk = [record for _, record in zip(range(settings.chunk_records), records)]
            if not chunk:
                break
            scorer.classify_chunk(chunk, reader.path)
            scorer.score_chunk(chunk)
            vcf_stream.write("".join(record_line(r) for r in chunk).encode())
            if tsv_stream is not None:
                tsv_stream.write("".join(tsv_line(r, keys) for r in chunk).encode())
            bar.update(reader.position() - bar.done)
    if sum(scorer.counts.values()) == 0:
        raise InputError(f"{reader.path}: the VCF has no records")
    if scorer.checked_refs < ASSEMBLY_CHECK_RECORDS:
        scorer.check_assembly(reader.path)
    if not scorer.counts[SCORED]:  # raised before the outputs are kept: an annotation without a score is no result
        reasons = "; ".join(line.strip() for line in summary_lines(scorer.counts)[1:])
        raise InputError(f"{reader.path}: no record could be scored ({reasons})")
    return scorer.counts


def summary_lines(counts):
    total = sum(counts.values())
    lines = [f"{total:,} records: {counts[SCORED]:,} scored"]
    lines += [f"  {counts[reason]:,} not scored: {text} ({reason})"
              for reason, text in NOT_SCORED_REASONS.items() if counts[reason]]
    return lines

