"""deepgmap-make-training-windows: genome FASTA + peak files (one class each) -> labelled windows."""

from ..errors import InputError
from ..fileio import atomic_output, check_outputs
from ..genome import Genome
from ..parallel import in_order
from ..peaks import check_blacklist_naming, default_class_name, read_peaks
from ..progress import message, warn
from ..windows import (NEGATIVE_SAMPLING, RULES, ChromosomeSplit, WindowSettings, check_class_names,
                       table_provenance_lines, write_training_windows)
from .common import (add_genome_argument, add_seed_argument, add_threads_argument, chromosome_list, command_line,
                     defaults_from, flatten, make_parser, non_negative_int, positive_int, probability, run_tool,
                     settings_from)

PROG = "deepgmap-make-training-windows"

DESCRIPTION = """\
Tile a genome into overlapping windows and label each window 0/1 for every class
(one peak file per class), with a train/valid/test split by chromosome.

Windows of --window bp start at 0 and every --stride bp after it; the last one ends at
or before the chromosome end. Windows with more than --max-n-fraction of bases other
than A/C/G/T are dropped, and so are windows touching --blacklist regions.

Labelling rules (--rule):
  summit   the window contains a peak summit (narrowPeak column 10, else the
           midpoint): the DeepGMAP paper's rule
  overlap  a peak covers >= --min-window-fraction of the window, or the window covers
           >= --min-peak-fraction of the peak (`bedtools intersect -u -f 0.6 -F 0.4 -e`,
           the original code's ChIP-seq rule)
  any      any overlap of >= 1 bp (the original code's DNase-seq rule)

Output: a tab-separated table (gzip if the name ends in .gz; '-' = stdout) that starts
with '##key=value' provenance lines, then the header
'#chrom start end split <class1> <class2> ...', then one row per window, sorted by
chromosome (lexicographic, as `sort -k1,1 -k2,2n`) and start. In the train split,
windows without any positive label (negatives) are sampled, reproducibly under --seed;
valid and test windows are never dropped.

Sampling of train negatives (--negatives):
  random      each negative is kept with probability --keep-negatives
  gc-matched  negatives are drawn so that their GC content (bins of 2%) follows that of
              the positives, chromosome by chromosome, with the same expected number as
              random sampling (--keep-negatives stays the kept fraction). Peaks are often
              GC-rich: against random negatives a model can separate the classes by base
              composition alone, a shortcut rather than the binding signal. GC bins with
              too few negatives give them all (the summary says so) and the other bins
              make up the number. GC is counted on the window (not its --flank) in the
              same pass over the sequence as the N filter: ~0.2 s more per 100 Mb.
"""

EPILOG = """\
example:
  deepgmap-make-training-windows --genome hg19.fa.gz --peaks CTCF.narrowPeak DNase.bed \\
      --test-chroms chr8,chr9 --valid-chroms chr7 -o windows.tsv.gz
"""


def build_parser():
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    inputs = parser.add_argument_group("inputs")
    add_genome_argument(inputs, "genome; an existing .fai/.gzi beside it is used if it fits the FASTA")
    inputs.add_argument("--peaks", required=True, nargs="+", metavar="PEAKS",
                        help="one BED (BED3 to BED12) or narrowPeak file per class (gzip allowed)")
    inputs.add_argument("--names", nargs="+", metavar="NAME",
                        help="class names, one per peak file (default: the file names without extensions)")
    inputs.add_argument("--blacklist", metavar="BED", help="drop windows that touch these regions")
    tiling = parser.add_argument_group("windows and labels")
    tiling.add_argument("--window", type=positive_int, help="window length in bp")
    tiling.add_argument("--stride", type=positive_int, help="distance between window starts in bp")
    tiling.add_argument("--flank", type=non_negative_int,
                        help="bp of sequence added on each side of every window in the table, so the model sees "
                             "more than it is labelled on (DeepSEA: --window 200 --flank 400); labels, N filter "
                             "and blacklist use the window itself; windows whose flanks leave the chromosome are "
                             "dropped")
    tiling.add_argument("--max-n-fraction", type=probability,
                        help="drop windows with a larger fraction of N (non-ACGT) bases")
    tiling.add_argument("--rule", choices=RULES, help="labelling rule (see above)")
    tiling.add_argument("--min-window-fraction", type=probability,
                        help="overlap rule: fraction of the window a peak must cover")
    tiling.add_argument("--min-peak-fraction", type=probability,
                        help="overlap rule: fraction of a peak the window must cover")
    split = parser.add_argument_group("chromosome split and sampling")
    split.add_argument("--test-chroms", nargs="+", type=chromosome_list, metavar="CHROM",
                       help="chromosomes held out for testing (names separated by spaces or commas)")
    split.add_argument("--valid-chroms", nargs="+", type=chromosome_list, metavar="CHROM",
                       help="chromosomes held out for validation")
    split.add_argument("--keep-negatives", type=probability,
                       help="probability of keeping a train window with no positive label")
    split.add_argument("--negatives", choices=NEGATIVE_SAMPLING,
                       help="how train negatives are sampled: at random, or matched to the positives' GC content "
                            "so that composition alone cannot separate the classes (see above)")
    add_seed_argument(split)
    add_threads_argument(parser)
    parser.add_argument("--strict", action="store_true",
                        help="fail, rather than warn, when a peak file names chromosomes the genome lacks")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="output table ('.gz' = gzip, '-' = stdout)")
    defaults_from(parser, WindowSettings)
    return parser


def class_names_for(peak_paths, names):
    if names is None:
        names = [default_class_name(path) for path in peak_paths]
        check_class_names(names, "the peak files' names (give --names)")
    elif len(names) != len(peak_paths):
        raise InputError(f"--names gives {len(names)} name(s) for {len(peak_paths)} peak file(s)")
    else:
        check_class_names(names, "--names")
    return names


def peaks_on_genome(peaks, chrom_lengths, strict):
    """A PeakSet's records on the genome's chromosomes; warn or fail about the rest."""
    path = peaks.path
    peaks, missing = peaks.restricted_to(chrom_lengths)
    if missing:
        first_line = min(int(iv.lines[0]) for iv in missing.values())
        lost = sum(len(iv.starts) for iv in missing.values())
        text = (f"{path}:{first_line}: {lost:,} record(s) on {len(missing)} chromosome(s) the genome lacks "
                f"({', '.join(sorted(missing)[:5])}); genome chromosomes are e.g. "
                f"{', '.join(list(chrom_lengths)[:3])}")
        if strict or peaks.count == 0:
            raise InputError(text + ("" if strict else "; no record is left: is it the same assembly and naming?"))
        warn(text + ": ignored")
    return peaks


def check_windows_fit(settings, chrom_lengths):
    """InputError unless a window with its flanks fits in the longest chromosome (before the genome is tiled)."""
    longest = max(chrom_lengths.values())
    needed = settings.window + 2 * settings.flank
    if needed > longest:
        raise InputError(f"--window {settings.window} with --flank {settings.flank} on each side needs {needed:,} bp: "
                         f"the longest chromosome has {longest:,}, so no window fits")


def run(args, argv):
    check_outputs(args.output, inputs=[args.genome, *args.peaks, args.blacklist])
    names = class_names_for(args.peaks, args.names)
    settings = settings_from(WindowSettings, args)
    settings.check()
    split = ChromosomeSplit(flatten(args.test_chroms), flatten(args.valid_chroms))
    with Genome(args.genome) as genome:
        split.check(genome.lengths)
        check_windows_fit(settings, genome.lengths)
        # Files are read in threads (gzip and numpy release the GIL) and checked in order.
        peak_sets = [peaks_on_genome(peaks, genome.lengths, args.strict)
                     for peaks in in_order(read_peaks, args.peaks, args.threads)]
        blacklist = read_peaks(args.blacklist, "blacklist") if args.blacklist else None
        if blacklist:
            check_blacklist_naming(blacklist, genome.names, "genome")
        if not split.test and not split.valid:
            warn("no --test-chroms or --valid-chroms: every window is in the train split")
        header = table_provenance_lines(command_line(PROG, argv), genome, names, peak_sets, settings, split,
                                        args.blacklist)
        with atomic_output(args.output) as stream:
            summary = write_training_windows(stream, genome, names, peak_sets, settings, split, blacklist,
                                             header, args.threads)
            if not sum(summary.windows.values()):  # raised inside: the empty table is not written
                raise InputError(f"{args.genome}: no window is left to write: {summary.dropped_n:,} had more than "
                                 f"--max-n-fraction {settings.max_n_fraction:g} N, {summary.dropped_blacklist:,} "
                                 f"touched the blacklist, {summary.dropped_negatives:,} train negatives were not "
                                 f"sampled" + (f", the rest had no room for --flank {settings.flank}"
                                               if settings.flank else ""))
    for line in summary.lines():
        message(line)


def main(argv=None):
    return run_tool(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
