"""deepgmap-motif-extract: a trained model's first-layer kernels as MEME motifs, matched to known ones."""

from ..errors import InputError
from ..fileio import atomic_output, check_outputs
from ..motifs import DEFAULT_SCALE
from ..progress import message
from .common import (add_backend_threads_argument, add_model_argument, add_seed_argument, auto_or, command_line,
                     import_keras, make_parser, non_negative_float, positive_float, positive_int, run_tool)

PROG = "deepgmap-motif-extract"

DESCRIPTION = """\
Write the first-layer convolution kernels of a model from deepgmap-train-model as motifs in
MEME format (version 4, DNA, both strands), and match them to known motifs with Tomtom.

Each kernel W (width x 4) becomes a probability matrix by a softmax over the four
nucleotides at each position, exp(--scale x W) / sum (the original DeepGMAP used 100, the
default), written in A,C,G,T order. --scale auto takes 1 / the standard deviation of the
weights: on trained models the original's 100 gives near one-hot matrices, and auto gave the
most kernels matching CTCF on the shipped CTCF models. --min-ic skips kernels whose matrix carries less information
(bits, against a uniform background).

--motif-db DB.meme runs Tomtom (memelite) of every kernel against the database and writes
the --top best matches per kernel to --tomtom OUT.tsv: query, target, p-value, E-value
(p x number of targets), q-value (Benjamini-Hochberg over all pairs), offset and the
orientation of the target (+, or - for its reverse complement). --logos writes an HTML page
with each kernel's logo (information-content scaled) beside the logo of its best match.
"""


def build_parser():
    parser = make_parser(PROG, DESCRIPTION)
    add_model_argument(parser)
    parser.add_argument("-o", "--output", required=True, metavar="MEME", help="kernels as MEME motifs")
    parser.add_argument("--scale", type=auto_or(positive_float), default=DEFAULT_SCALE,
                        help="softmax scale of the kernel weights: a number > 0 or 'auto' (see above)")
    parser.add_argument("--min-ic", type=non_negative_float, default=0.0,
                        help="skip kernels with less information (bits)")
    parser.add_argument("--motif-db", metavar="MEME", help="known motifs to match the kernels against")
    parser.add_argument("--tomtom", metavar="TSV", help="best Tomtom matches per kernel (needs --motif-db)")
    parser.add_argument("--top", type=positive_int, default=5, help="matches per kernel in --tomtom")
    parser.add_argument("--activation-max", metavar="CLASS",
                        help="optimise an input for this class (y_class / sum of the others) or for 'all' "
                             "(product of all classes), the paper's activation maximisation; read it as a sequence")
    parser.add_argument("--am-out", metavar="FASTA", help="the activation-maximised sequence")
    parser.add_argument("--am-steps", type=positive_int, default=200, help="Adam steps of the optimisation")
    parser.add_argument("--am-learning-rate", type=positive_float, default=0.001, help="Adam step size")
    parser.add_argument("--am-hits", metavar="TSV", help="FIMO hits of --motif-db motifs in that sequence")
    add_seed_argument(parser)
    add_backend_threads_argument(parser)
    parser.add_argument("--connections", metavar="PNG|SVG",
                        help="graph of the strongest 10%% of links from the first-layer kernels through the "
                             "convolutions to each class (the paper's Fig. 3b), kernels labelled with their best match")
    parser.add_argument("--logos", metavar="HTML",
                        help="a page with each kernel's logo beside its best match's (information-content scaled)")
    return parser


def run(args, argv):
    check_outputs(args.output, args.tomtom, args.am_out, args.am_hits, args.connections, args.logos,
                  inputs=[args.model, args.motif_db])
    if args.tomtom and not args.motif_db or args.am_hits and not args.motif_db:
        raise InputError("--tomtom and --am-hits need --motif-db")
    if bool(args.activation_max) != bool(args.am_out) or args.am_hits and not args.activation_max:
        raise InputError("--activation-max and --am-out go together (and --am-hits needs them)")
    import_keras(onednn=True, threads=args.threads)
    from ..models.files import load_model
    from ..motifs import (auto_scale, first_layer_kernels, information_content, kernel_probabilities, meme_text,
                          read_motif_db)
    from ..motifs import logos_html, tomtom_matches, tomtom_table

    database = read_motif_db(args.motif_db) if args.motif_db else None
    model, info = load_model(args.model, compile=False)
    layer, kernels = first_layer_kernels(model)
    scale = auto_scale(kernels) if args.scale == "auto" else args.scale
    if args.scale == "auto":
        message(f"--scale auto: {scale:.3g} (1 / the standard deviation of the {layer} weights)")
    matrices = kernel_probabilities(kernels, scale)
    content = information_content(matrices)
    kept = [i for i in range(len(matrices)) if content[i] >= args.min_ic]
    if not kept:
        raise InputError(f"no kernel has --min-ic {args.min_ic} bits (the most informative has {content.max():.2f})")
    names = [f"{layer}_kernel{i + 1}" for i in kept]
    kept_matrices = [matrices[i] for i in kept]
    with atomic_output(args.output) as stream:
        stream.write(meme_text(names, kept_matrices).encode())
    message(f"{PROG}: {len(kept)} of {len(matrices)} kernels of {layer} written to {args.output}")
    if args.activation_max:
        write_activation_maximum(model, info, args, database)
    best_rows = {}  # kernel name -> its best Tomtom row (rows come best first per kernel)
    if args.tomtom:
        rows = tomtom_matches(names, kept_matrices, *database, top=args.top)
        with atomic_output(args.tomtom) as stream:
            stream.write(tomtom_table(rows, "motif-extract", command_line(PROG, argv)).encode())
        for row in rows:
            best_rows.setdefault(row[0], row)
        best = min(rows, key=lambda row: row[2])
        message(f"best match: {best[0]} ~ {best[1]} (p {best[2]:.3g}, q {best[4]:.3g})")
    if args.connections:
        from ..interpret import plot_connections

        # Label with the motif's short name: 'C055:CTCF:C2H2_ZF' -> 'CTCF'.
        labels = {kept[names.index(query)]: f"{query.split('_')[-1]} {(row[1].split(':') + [row[1]])[1]}"
                  for query, row in best_rows.items()}
        image_format = "svg" if args.connections.lower().endswith(".svg") else "png"
        with atomic_output(args.connections) as stream:
            plot_connections(model, info.class_names, stream, image_format, labels)
    if args.logos:
        targets = dict(zip(*database)) if database else {}
        best_matches = {query: (row[1], targets[row[1]], row[4], row[6]) for query, row in best_rows.items()}
        with atomic_output(args.logos) as stream:
            stream.write(logos_html(names, kept_matrices, best_matches).encode())


def write_activation_maximum(model, info, args, database):
    """The paper's activation maximisation for one class or all, as FASTA, and FIMO hits in it."""
    from ..interpret import input_to_sequence, maximise_activation

    classes = info.class_names
    if args.activation_max != "all" and args.activation_max not in classes:
        raise InputError(f"--activation-max {args.activation_max!r}: the model's classes are "
                         f"{', '.join(classes)} (or 'all')")
    class_index = None if args.activation_max == "all" else classes.index(args.activation_max)
    x, trace = maximise_activation(model, info.window, class_index, args.am_steps,
                                   args.am_learning_rate, seed=args.seed)
    sequence = input_to_sequence(x[0])
    name = f"activation_max_{args.activation_max}"
    with atomic_output(args.am_out) as stream:
        stream.write(f">{name} objective {trace[0]:.4g} -> {trace[-1]:.4g} after {args.am_steps} steps\n".encode())
        stream.write("".join(sequence[i:i + 60] + "\n" for i in range(0, len(sequence), 60)).encode())
    message(f"activation maximisation for {args.activation_max}: objective {trace[0]:.4g} -> {trace[-1]:.4g}")
    if args.am_hits:
        from memelite import fimo

        from ..genome import one_hot_encode
        from ..motifs import MEME_ORDER

        one_hot = one_hot_encode(sequence)[:, MEME_ORDER].T[None]
        hits = fimo(dict((n, m.T) for n, m in zip(*database)), one_hot)
        with atomic_output(args.am_hits) as stream:
            stream.write(b"#motif\tsequence\tstart\tend\tstrand\tscore\tp_value\n")
            for frame in hits:
                for row in frame.itertuples(index=False):
                    stream.write(f"{row.motif_name}\t{name}\t{row.start}\t{row.end}\t{row.strand}\t"
                                 f"{row.score:.4g}\t{row[7]:.4g}\n".encode())


def main(argv=None):
    return run_tool(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
