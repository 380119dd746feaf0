"""Quality control of a peak set against its reads: FRiP, covered fraction and cFRiP.

Definitions (the paper's, made exact):
  reads_total       counted reads (mapped, primary, not QC-failed, plus the filter's settings)
                    on the BAM header's chromosomes other than chrM
  reads_in_peaks    counted reads whose aligned span overlaps a peak by >= 1 bp, each once
  frip              reads_in_peaks / reads_total
  covered_fraction  bases of those chromosomes covered by >= 1 aligned read span / their length
  cfrip             frip x covered_fraction
"""

import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from . import __version__
from .alignments import IndexedBam, is_mitochondrial
from .fileio import provenance_lines
from .peaks import merge_intervals, overlaps_any
from .progress import ProgressBar

CHUNK = 2_000_000  # bp of one unit of work (small enough to balance processes); a multiple of FINGERPRINT_BIN
FINGERPRINT_BIN = 10_000


@dataclass
class Thresholds:
    min_frip: float = 0.01
    min_cfrip: float = 0.0
    min_peaks: int = 10_000


@dataclass
class ReadCounts:
    reads_total: int = 0
    reads_in_peaks: int = 0
    covered_bases: int = 0
    genome_bases: int = 0
    bin_counts: list = field(default_factory=list)  # reads per FINGERPRINT_BIN bin, per chunk


def count_chunk(bam, chrom, start, end, chrom_length, merged_peaks, read_filter):
    """Reads starting in [start, end), those overlapping a peak, covered bases in [start, end),
    and reads per fingerprint bin, for one piece of one chromosome."""
    # Coverage uses every read overlapping the piece; counts only the reads starting in it,
    # so a read crossing into the next piece is counted once.
    starts, ends = bam.read_spans(chrom, start, end, read_filter)
    own = starts >= start
    in_peaks = int(overlaps_any(starts[own], ends[own], *merged_peaks).sum())
    clipped_starts = np.maximum(starts, start)
    clipped_ends = np.minimum(ends, min(end, chrom_length))
    # Union length of spans sorted by start: each adds what lies beyond the furthest end so far.
    reach = np.concatenate([[start], np.maximum.accumulate(clipped_ends)[:-1]])
    covered = int(np.maximum(clipped_ends - np.maximum(clipped_starts, reach), 0).sum())
    bins = np.bincount((starts[own] - start) // FINGERPRINT_BIN,
                       minlength=-(-(min(end, chrom_length) - start) // FINGERPRINT_BIN))
    return int(own.sum()), in_peaks, covered, bins


_worker_bam = None


def _open_worker(path, index):
    global _worker_bam
    _worker_bam = IndexedBam(path, index)


def _count_in_worker(args):
    return count_chunk(_worker_bam, *args)


def count_reads(bam, peak_intervals, read_filter, threads=1):
    """ReadCounts over every non-mitochondrial chromosome of `bam`'s header against the peaks
    (dict chrom -> (starts, ends)), in pieces of CHUNK bp, in `threads` processes that each
    open their own BAM handle."""
    merged = {chrom: merge_intervals(*intervals) for chrom, intervals in peak_intervals.items()}
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    tasks = [(chrom, lo, min(lo + CHUNK, length), length, merged.get(chrom, empty), read_filter)
             for chrom, length in bam.lengths.items() if not is_mitochondrial(chrom)
             for lo in range(0, length, CHUNK)]
    counts = ReadCounts(genome_bases=sum(l for c, l in bam.lengths.items() if not is_mitochondrial(c)))
    with ProgressBar(counts.genome_bases, "counting reads", "bp") as progress:
        if threads > 1:
            with ProcessPoolExecutor(threads, initializer=_open_worker,
                                     initargs=(bam.reads_path, bam.index_path)) as pool:
                try:
                    results = list(_tracked(pool.map(_count_in_worker, tasks), tasks, progress))
                except BaseException:  # a signal or an error: the queued pieces are not counted first
                    pool.shutdown(cancel_futures=True)
                    raise
        else:
            results = list(_tracked((count_chunk(bam, *task) for task in tasks), tasks, progress))
    for reads, in_peaks, covered, bins in results:
        counts.reads_total += reads
        counts.reads_in_peaks += in_peaks
        counts.covered_bases += covered
        counts.bin_counts.append(bins)
    return counts


def _tracked(results, tasks, progress):
    for result, task in zip(results, tasks):
        progress.update(task[2] - task[1])
        yield result


@dataclass
class QCReport:
    sample: str
    reads_total: int
    reads_in_peaks: int
    frip: float
    covered_bases: int
    genome_bases: int
    covered_fraction: float
    cfrip: float
    peaks: int
    peaks_removed: int
    passed: bool
    failed_checks: list
    parameters: dict

    @property
    def verdict(self):
        return "PASS" if self.passed else "FAIL"


def assess(sample, counts, n_peaks, peaks_removed, thresholds, parameters):
    """FRiP, covered fraction and cFRiP with a PASS/FAIL verdict against `thresholds`."""
    frip = counts.reads_in_peaks / counts.reads_total if counts.reads_total else 0.0
    covered = counts.covered_bases / counts.genome_bases if counts.genome_bases else 0.0
    cfrip = frip * covered
    failed = [text for bad, text in (
        (frip < thresholds.min_frip, f"FRiP {frip:.4g} < {thresholds.min_frip}"),
        (cfrip < thresholds.min_cfrip, f"cFRiP {cfrip:.4g} < {thresholds.min_cfrip}"),
        (n_peaks < thresholds.min_peaks, f"{n_peaks} peaks < {thresholds.min_peaks}")) if bad]
    return QCReport(sample, counts.reads_total, counts.reads_in_peaks, frip, counts.covered_bases,
                    counts.genome_bases, covered, cfrip, n_peaks, peaks_removed, not failed, failed,
                    dict(parameters, **asdict(thresholds)))


_TSV_COLUMNS = ("sample", "reads_total", "reads_in_peaks", "frip", "covered_fraction", "cfrip", "peaks",
                "verdict", "failed_checks")


def qc_table(report, command_line):
    """The QC as a one-row table with `##` provenance lines, so tables of many samples concatenate."""
    values = {**asdict(report), "verdict": report.verdict,
              "failed_checks": "; ".join(report.failed_checks) or "none"}
    lines = provenance_lines("bam-to-peaks", command_line, **report.parameters)
    lines += ["#" + "\t".join(_TSV_COLUMNS),
              "\t".join(f"{values[c]:.6g}" if isinstance(values[c], float) else str(values[c])
                        for c in _TSV_COLUMNS)]
    return "\n".join(lines) + "\n"


def qc_json(report, command_line):
    document = {key: value for key, value in asdict(report).items() if key != "passed"}
    document.update({"pass": report.passed, "verdict": report.verdict,
                     "deepgmap_version": __version__, "command": command_line})
    return json.dumps(document, indent=2) + "\n"


# Columns of the MultiQC table: (key, title, description, format); fractions are shown on 0-1.
_MULTIQC_COLUMNS = (
    ("reads_total", "Reads", "counted reads (mapped, primary, not QC-failed) outside chrM", "{:,.0f}"),
    ("frip", "FRiP", "fraction of the reads in peaks", "{:,.3f}"),
    ("covered_fraction", "Covered", "fraction of the genome covered by at least one read", "{:,.3f}"),
    ("cfrip", "cFRiP", "FRiP x covered fraction (the DeepGMAP paper's filter)", "{:,.4f}"),
    ("peaks", "Peaks", "peaks after the blacklist", "{:,.0f}"),
    ("verdict", "QC", "PASS or FAIL against the thresholds", None),
)


def qc_multiqc(report):
    """The QC as MultiQC custom content (JSON; MultiQC finds files named *_mqc.json): one row per
    sample in a table of its own, rows of many samples gathered by MultiQC."""
    values = {**asdict(report), "verdict": report.verdict}
    headers = {key: {"title": title, "description": text, **({"format": form} if form else {}),
                     **({"min": 0, "max": 1} if key in ("frip", "covered_fraction", "cfrip") else {})}
               for key, title, text, form in _MULTIQC_COLUMNS}
    document = {"id": "deepgmap_bam_to_peaks", "section_name": "DeepGMAP peak QC",
                "description": f"FRiP and cFRiP of MACS3 peaks (deepgmap-bam-to-peaks {__version__})",
                "plot_type": "table", "pconfig": {"id": "deepgmap_bam_to_peaks_table", "namespace": "DeepGMAP"},
                "headers": headers, "data": {report.sample: {key: values[key] for key, *_ in _MULTIQC_COLUMNS}}}
    return json.dumps(document, indent=2) + "\n"


def qc_multiqc_table(report):
    """The QC as MultiQC custom content that is plain tabular, as Galaxy's MultiQC tool takes it: a
    header of the columns' titles and the sample's row, no comment lines (MultiQC reads `#` lines
    as its own settings)."""
    values = {**asdict(report), "verdict": report.verdict}
    cells = [f"{values[key]:.6g}" if isinstance(values[key], float) else str(values[key])
             for key, *_ in _MULTIQC_COLUMNS]
    header = ["Sample", *(title for _, title, *_ in _MULTIQC_COLUMNS)]
    return "\t".join(header) + "\n" + "\t".join([report.sample, *cells]) + "\n"


def plot_qc(report, counts, stream):
    """PNG: the fingerprint (cumulative read fraction over genome bins ranked by reads) and
    the QC values against their thresholds."""
    from .reports import figure_bytes, pyplot

    bins = np.sort(np.concatenate(counts.bin_counts)) if counts.bin_counts else np.zeros(1)
    cumulative = np.cumsum(bins) / max(bins.sum(), 1)
    rank = np.arange(1, len(bins) + 1) / len(bins)
    figure, (left, right) = pyplot().subplots(1, 2, figsize=(10, 4.2))
    left.plot(rank, cumulative, color="#1f77b4", label=report.sample)
    left.plot([0, 1], [0, 1], color="grey", linestyle="--", label="uniform reads")
    left.set(xlabel=f"fraction of {FINGERPRINT_BIN // 1000} kb bins, ranked by reads",
             ylabel="cumulative fraction of reads", title="Fingerprint", xlim=(0, 1), ylim=(0, 1))
    left.legend(loc="upper left")
    values = {"FRiP": report.frip, "covered\nfraction": report.covered_fraction, "cFRiP": report.cfrip}
    limits = {"FRiP": report.parameters["min_frip"], "cFRiP": report.parameters["min_cfrip"]}
    positions = np.arange(len(values))
    colours = ["grey" if key not in limits else "#2ca02c" if values[key] >= limits[key] else "#d62728"
               for key in values]
    right.bar(positions, list(values.values()), color=colours)
    for x, key in enumerate(values):
        right.text(x, values[key], f"{values[key]:.3g}", ha="center", va="bottom")
        if limits.get(key):
            right.hlines(limits[key], x - 0.4, x + 0.4, colors="black", linestyles=":")
    right.set_xticks(positions, list(values))
    right.set(ylim=(0, max(1e-3, max(values.values()) * 1.25)),
              title=f"{report.verdict}: {report.peaks:,} peaks, {report.reads_total:,} reads")
    figure.suptitle(f"{report.sample}: {'; '.join(report.failed_checks) or 'all checks passed'}", fontsize=10)
    figure.tight_layout()
    stream.write(figure_bytes(figure))
