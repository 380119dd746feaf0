"""deepgmap-discover-motifs: TF-MoDISco motifs from the contributions of deepgmap-attribute."""

from ..errors import InputError
from ..fileio import atomic_output, check_outputs, provenance_lines
from ..motif_discovery import DiscoverySettings
from ..progress import message, warn
from .common import command_line, defaults_from, make_parser, non_negative_int, positive_int, run_tool, settings_from

PROG = "deepgmap-discover-motifs"
TOOL = "discover-motifs"

DESCRIPTION = """\
Find the motifs a model has learnt from its contribution scores: TF-MoDISco (modisco-lite)
on the output of deepgmap-attribute, for one class (--class; default the one the file names).

TF-MoDISco cuts seqlets, stretches of --sliding-window bp of high total contribution with
--flank bp each side, out of the central --width bp of each window, clusters them by their
hypothetical contributions and aggregates each cluster into a pattern: positive patterns
raise the class's prediction, negative ones lower it. Each pattern, trimmed to the
positions whose contribution reaches 0.3 of its highest (as modisco-lite's report does), is
written as a MEME motif (its seqlets' base frequencies; nsites = seqlets). Too few seqlets to
cluster is a result, not an error: a warning, and outputs without patterns.

--motif-db DB.meme   match the patterns to known motifs with Tomtom (memelite): --tomtom OUT.tsv
                     gets the --top best per pattern (p, E = p x targets, q = Benjamini-Hochberg
                     over all pairs, offset, orientation)
--report OUT.html    per pattern: contribution logo, PWM logo, seqlets, best matches with
                     q-values, and example seqlets with their coordinates
--seqlets OUT.bed    every seqlet of every pattern as BED6 (chrom, start, end, pattern,
                     summed contribution, strand), sorted: a genome browser opens it
"""


def build_parser():
    parser = make_parser(PROG, DESCRIPTION)
    parser.add_argument("-i", "--attributions", required=True, metavar="H5", help="output of deepgmap-attribute")
    parser.add_argument("--class", dest="class_name", metavar="CLASS", help="class to explain (default: the file's)")
    parser.add_argument("-o", "--output", required=True, metavar="MEME", help="the patterns as MEME motifs")
    parser.add_argument("--motif-db", metavar="MEME", help="known motifs to match the patterns against")
    parser.add_argument("--tomtom", metavar="TSV", help="best Tomtom matches per pattern (needs --motif-db)")
    parser.add_argument("--top", type=positive_int, default=3, help="matches per pattern in --tomtom and --report")
    parser.add_argument("--report", metavar="HTML", help="a page with each pattern's logos, matches and seqlets")
    parser.add_argument("--seqlets", metavar="BED", help="every seqlet as BED6")
    parser.add_argument("--width", type=non_negative_int,
                        help="central bp of each window to search (0: the whole window)")
    parser.add_argument("--max-seqlets", type=positive_int, help="most seqlets clustered per sign (positive, negative)")
    parser.add_argument("--sliding-window", type=positive_int, help="bp summed to find seqlets")
    parser.add_argument("--flank", type=non_negative_int, help="bp added to each side of a seqlet")
    parser.add_argument("--min-seqlets", type=positive_int,
                        help="fewest seqlets of a pattern (and of a sign to be clustered at all)")
    defaults_from(parser, DiscoverySettings)
    return parser


def run(args, argv):
    check_outputs(args.output, args.tomtom, args.report, args.seqlets,
                  inputs=[args.attributions, args.motif_db])
    if args.tomtom and not args.motif_db:
        raise InputError("--tomtom needs --motif-db")
    from ..attribution import read_attributions
    from ..motif_discovery import central_offset, discover_patterns, patterns_html, seqlet_bed_rows
    from ..motifs import meme_text, read_motif_db, tomtom_matches, tomtom_table

    database = read_motif_db(args.motif_db) if args.motif_db else None
    one_hot, hypothetical, chroms, starts, attributes = read_attributions(args.attributions, args.class_name)
    class_name = args.class_name or str(attributes["modisco_class"])
    settings = settings_from(DiscoverySettings, args)
    settings.check(one_hot.shape[1])
    message(f"{PROG}: TF-MoDISco on {len(one_hot):,} windows of {one_hot.shape[1]} bp, class {class_name}")
    patterns = discover_patterns(one_hot, hypothetical, settings)
    if patterns:
        message(f"{len(patterns)} patterns: " + ", ".join(f"{p.name} ({len(p.seqlets)} seqlets)" for p in patterns))
    else:  # a result, as a peak caller's zero peaks: the outputs say so, a workflow goes on
        warn(f"TF-MoDISco found no pattern of >= {settings.min_seqlets} seqlets in {len(one_hot):,} windows: "
             f"more regions or a lower --min-seqlets may find some")
    with atomic_output(args.output) as stream:
        stream.write(meme_text([p.name for p in patterns], [p.ppm for p in patterns],
                               [len(p.seqlets) for p in patterns]).encode())
    matches = {}
    if database and patterns:
        rows = tomtom_matches([p.name for p in patterns], [p.ppm for p in patterns], *database, top=args.top)
        for row in rows:
            matches.setdefault(row[0], []).append(row)
        for pattern in patterns[:3]:
            best = matches[pattern.name][0]
            message(f"{pattern.name} ~ {best[1]} (q {best[4]:.3g})")
    if args.tomtom:
        with atomic_output(args.tomtom) as stream:
            stream.write(tomtom_table(sum(matches.values(), []), TOOL, command_line(PROG, argv)).encode())
    offset = central_offset(one_hot.shape[1], settings.width)
    if args.seqlets:
        with atomic_output(args.seqlets) as stream:
            stream.write("".join(line + "\n" for line in provenance_lines(TOOL, command_line(PROG, argv))).encode())
            stream.write("".join(f"{chrom}\t{start}\t{end}\t{name}\t{score:.4g}\t{strand}\n" for chrom, start, end,
                                 name, score, strand in seqlet_bed_rows(patterns, chroms, starts, offset)).encode())
    if args.report:
        title = f"TF-MoDISco patterns of {class_name} ({attributes.get('method')} contributions, " \
                f"{len(one_hot):,} windows)"
        with atomic_output(args.report) as stream:
            stream.write(patterns_html(patterns, matches, chroms, starts, offset, one_hot, title).encode())


def main(argv=None):
    return run_tool(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
