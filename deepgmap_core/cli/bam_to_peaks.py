"""deepgmap-bam-to-peaks: aligned reads -> MACS3 peaks, with FRiP/cFRiP quality control."""

import contextlib
import os
import re

from ..alignments import IndexedBam, ReadFilter, is_mitochondrial
from ..bounds import MAPQ
from ..errors import InputError
from ..fileio import atomic_output, check_outputs
from ..peak_calling import ASSAYS, PeakCallSettings, call_peaks, clean_peaks, write_rows
from ..peaks import check_blacklist_naming, read_peaks
from ..progress import message
from ..qc import Thresholds, assess, count_reads, plot_qc, qc_json, qc_multiqc, qc_multiqc_table, qc_table
from .common import (add_threads_argument, command_line, defaults_from, make_parser, non_negative_int, number_type,
                     positive_probability, probability, run_tool, settings_from)

PROG = "deepgmap-bam-to-peaks"
EXIT_QC_FAILED = 3

DESCRIPTION = f"""\
Call peaks on aligned reads with MACS3 and judge whether the data set is good enough to
train on (FRiP and the DeepGMAP paper's cFRiP).

MACS3 presets (the paper's):
  chip         callpeak --call-summits -q 0.01, with the control when given; if MACS3
               cannot build its fragment model (too few paired peaks), reads are extended
               to 200 bp instead (--fix-bimodal --extsize 200)
  dnase, atac  callpeak --call-summits -q 0.01 --nomodel --shift -100 --extsize 200
--paired reads the BAM as read pairs (MACS3 -f BAMPE: fragments from the pairs); a BAM
none of whose first 1,000 mapped reads is paired is refused. A CRAM is read with the genome
given with --reference (into a private BAM, as MACS3 reads BAM only). An index beside the BAM
that does not fit it (another BAM's) is passed over, with a warning, for one made privately.
Peaks on chrM/chrMT, and peaks overlapping --blacklist regions, are removed before QC.

QC definitions:
  reads_total       mapped, primary, not QC-failed reads (also: MAPQ >= --min-mapq, not
                    duplicates with --ignore-duplicates) on the BAM header's chromosomes
                    other than chrM; each mate of a pair is a read
  reads_in_peaks    reads whose aligned span overlaps a peak by >= 1 bp, each counted once
                    (deepTools' countReadsPerBin without read extension counts the same way)
  FRiP              reads_in_peaks / reads_total
  covered_fraction  bases of those chromosomes covered by >= 1 aligned read span, divided by
                    their total length (a mapped read without CIGAR spans 1 bp, as in htslib)
  cFRiP             FRiP x covered_fraction (Onimaru et al.: it separates data sets that
                    train well from those that do not better than FRiP)
The verdict is PASS when FRiP >= --min-frip, cFRiP >= --min-cfrip and peaks >= --min-peaks
(the paper excluded data sets with fewer than 10,000 peaks). With --fail-on-qc a FAIL
exits with code {EXIT_QC_FAILED} (bad input exits with 1), so a workflow can stop on it.
"""

EPILOG = """\
example:
  deepgmap-bam-to-peaks --bam CTCF.bam --control input.bam --assay chip --genome-size hs \\
      --blacklist hg19-blacklist.v2.bed --peaks CTCF.narrowPeak --summits CTCF.summits.bed \\
      --qc CTCF.qc.tsv --qc-json CTCF.qc.json --qc-plot CTCF.qc.png
"""


def build_parser():
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    reads = parser.add_argument_group("reads")
    reads.add_argument("--bam", required=True,
                       help="treatment reads: coordinate-sorted BAM (indexed or not), or CRAM with --reference")
    reads.add_argument("--bam-index", metavar="BAI", help="index of --bam if not beside it (as Galaxy keeps it)")
    reads.add_argument("--control", metavar="BAM", help="control (input) reads for ChIP-seq")
    reads.add_argument("--control-index", metavar="BAI", help="index of --control if not beside it")
    reads.add_argument("--reference", metavar="FASTA",
                       help="genome the reads were aligned to, for CRAM input (read into a private BAM for MACS3)")
    reads.add_argument("--paired", action="store_true", help="paired-end reads (MACS3 -f BAMPE)")
    reads.add_argument("--min-mapq", type=number_type(MAPQ), help="QC counts only reads with this MAPQ or more")
    reads.add_argument("--ignore-duplicates", action="store_true", help="QC ignores reads flagged as duplicates")
    calling = parser.add_argument_group("peak calling")
    calling.add_argument("--assay", choices=ASSAYS, help="sets the MACS3 preset (see above)")
    calling.add_argument("--genome-size",
                         help="effective genome size for MACS3: hs, mm, ce, dm or a number of bp (e.g. 1.2e7)")
    calling.add_argument("--qvalue", type=positive_probability, help="MACS3 q-value cut-off")
    calling.add_argument("--name", help="sample name for peak names and the QC table (default: the BAM file stem, "
                                        "other characters than letters, digits and _ . + - made _)")
    calling.add_argument("--blacklist", metavar="BED", help="remove peaks overlapping these regions")
    qc = parser.add_argument_group("quality control")
    qc.add_argument("--min-frip", type=probability, help="PASS needs at least this FRiP (ENCODE: 1%%)")
    qc.add_argument("--min-cfrip", type=probability, help="PASS needs at least this cFRiP")
    qc.add_argument("--min-peaks", type=non_negative_int, help="PASS needs at least this many peaks")
    qc.add_argument("--fail-on-qc", action="store_true", help=f"exit with code {EXIT_QC_FAILED} on FAIL")
    add_threads_argument(parser)
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--peaks", required=True, metavar="NARROWPEAK", help="peaks (narrowPeak, sorted)")
    outputs.add_argument("--summits", metavar="BED", help="peak summits (BED, one per narrowPeak row)")
    outputs.add_argument("--qc", metavar="TSV", help="QC as a one-row table with provenance lines")
    outputs.add_argument("--qc-json", metavar="JSON", help="QC and parameters as JSON")
    outputs.add_argument("--qc-multiqc", metavar="JSON",
                         help="QC as MultiQC custom content: name it SAMPLE_mqc.json and `multiqc` gathers the "
                              "samples' FRiP and cFRiP into one table")
    outputs.add_argument("--qc-multiqc-table", metavar="TSV",
                         help="the same as a plain table (a header and the sample's row, no comment lines), as "
                              "Galaxy's MultiQC tool takes custom content")
    outputs.add_argument("--qc-plot", metavar="PNG", help="fingerprint and QC values as a picture")
    for settings_class in (ReadFilter, Thresholds):
        defaults_from(parser, settings_class)
    defaults_from(parser, PeakCallSettings, leave=("name",))  # --name: the BAM file stem by default
    return parser


def open_reads(path, index, what, args):
    """Open a BAM (or CRAM) and check that it has mapped reads outside chrM (and pairs, for --paired)."""
    bam = IndexedBam(path, index, what, args.reference)
    try:
        mapped = {c: n for c, n in bam.mapped_per_chrom().items() if n and not is_mitochondrial(c)}
        if not mapped:
            raise InputError(f"{path}: the {what} has no mapped reads (outside chrM)")
        if args.paired:
            bam.check_paired(what)
    except BaseException:
        bam.close()
        raise
    return bam, mapped


def sample_name(bam_path):
    """The BAM file's stem, with what a sample name may not hold made _ (`my sample.bam`: my_sample)."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", os.path.basename(bam_path).split(".")[0]).strip("_") or "sample"


def run(args, argv):
    check_outputs(args.peaks, args.summits, args.qc, args.qc_json, args.qc_multiqc, args.qc_multiqc_table,
                  args.qc_plot, inputs=[args.bam, args.bam_index, args.control, args.control_index, args.blacklist,
                                        args.reference])
    name = args.name or sample_name(args.bam)
    settings = settings_from(PeakCallSettings, args, name=name)
    settings.check()
    thresholds = settings_from(Thresholds, args)
    read_filter = settings_from(ReadFilter, args)
    blacklist = read_peaks(args.blacklist, "blacklist") if args.blacklist else None
    bam, mapped = open_reads(args.bam, args.bam_index, "BAM", args)
    with bam, contextlib.ExitStack() as control_open:
        if blacklist:
            check_blacklist_naming(blacklist, bam.lengths, "BAM")
        control_reads = None
        if args.control:
            control, control_mapped = open_reads(args.control, args.control_index, "control BAM", args)
            control_reads = control_open.enter_context(control).reads_path  # kept open: a CRAM's BAM is private
            if not set(mapped) & set(control_mapped):
                raise InputError(f"{args.control}: the control has reads on {', '.join(sorted(control_mapped)[:3])}, "
                                 f"none on the treatment's chromosomes ({', '.join(sorted(mapped)[:3])})")
        message(f"{PROG}: calling peaks with MACS3 ({args.assay} preset) on {args.bam}")
        called, removed = clean_peaks(call_peaks(bam.reads_path, control_reads, settings), blacklist)
        chroms, starts, ends = called.coordinates()
        peak_intervals = {c: (starts[chroms == c], ends[chroms == c]) for c in set(chroms)}
        counts = count_reads(bam, peak_intervals, read_filter, args.threads)
    parameters = {"bam": args.bam, "control": args.control or "none", "reference": args.reference or "none",
                  "assay": args.assay,
                  "genome_size": args.genome_size, "qvalue": args.qvalue, "paired": args.paired,
                  "blacklist": args.blacklist or "none", "read_filter": read_filter.describe(),
                  "macs3_command": " ".join(called.command[1:])}
    report = assess(name, counts, len(called.peaks), removed, thresholds, parameters)
    provenance = command_line(PROG, argv)
    with atomic_output(args.peaks) as stream:
        write_rows(called.peaks, stream)
    if args.summits:
        with atomic_output(args.summits) as stream:
            write_rows(called.summits, stream)
    if args.qc:
        with atomic_output(args.qc) as stream:
            stream.write(qc_table(report, provenance).encode())
    if args.qc_json:
        with atomic_output(args.qc_json) as stream:
            stream.write(qc_json(report, provenance).encode())
    if args.qc_multiqc:
        with atomic_output(args.qc_multiqc) as stream:
            stream.write(qc_multiqc(report).encode())
    if args.qc_multiqc_table:
        with atomic_output(args.qc_multiqc_table) as stream:
            stream.write(qc_multiqc_table(report).encode())
    if args.qc_plot:
        with atomic_output(args.qc_plot) as stream:
            plot_qc(report, counts, stream)
    message(f"{name}: {report.verdict}: {report.peaks:,} peaks ({removed:,} removed: chrM/blacklist), "
            f"{report.reads_total:,} reads, FRiP {report.frip:.4f}, covered fraction "
            f"{report.covered_fraction:.4f}, cFRiP {report.cfrip:.5f}"
            + (f" ({'; '.join(report.failed_checks)})" if report.failed_checks else ""))
    return EXIT_QC_FAILED if args.fail_on_qc and not report.passed else 0


def main(argv=None):
    return run_tool(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
