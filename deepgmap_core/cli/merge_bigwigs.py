"""deepgmap-merge-bigwigs: bigWigs of separate jobs (e.g. one per chromosome) -> one bigWig."""

from ..fileio import check_outputs
from ..progress import message
from ..tracks import merge_bigwigs
from .common import make_parser, run_tool

PROG = "deepgmap-merge-bigwigs"

DESCRIPTION = """\
Merge bigWigs written by separate jobs into one, e.g. the tracks of one class from
deepgmap-predict-bigwig jobs run on different chromosomes (--chroms) or on per-chromosome
FASTA files, so that genome-wide prediction runs as parallel jobs.

The inputs must agree on the size of every chromosome they name and their intervals must
not overlap (each chromosome or region predicted once). The output lists every chromosome
of the inputs, in the order they first appear, and holds the inputs' intervals unchanged:
the per-chromosome parts of a genome-wide run merge into the bigWig the single run writes.
"""

EPILOG = """\
example (one job per chromosome, then one merge per class):
  deepgmap-predict-bigwig --model model.keras --genome hg19.fa.gz --chroms chr1 --outdir parts/chr1
  deepgmap-predict-bigwig --model model.keras --genome hg19.fa.gz --chroms chr2 --outdir parts/chr2
  deepgmap-merge-bigwigs -o CTCF.bw parts/chr1/CTCF.bw parts/chr2/CTCF.bw
"""


def build_parser():
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument("inputs", nargs="+", metavar="BIGWIG", help="bigWigs to merge")
    parser.add_argument("-o", "--output", required=True, metavar="BIGWIG", help="the merged bigWig")
    return parser


def run(args, argv):
    check_outputs(seekable=[args.output], inputs=args.inputs)
    summary = merge_bigwigs(args.inputs, args.output)
    message(f"{PROG}: {len(args.inputs)} bigWig(s) -> {args.output}: {summary.intervals:,} intervals on "
            f"{summary.chromosomes_with_data} of {summary.chromosomes} chromosome(s)")


def main(argv=None):
    return run_tool(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
