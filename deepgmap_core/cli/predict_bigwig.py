"""deepgmap-predict-bigwig: a trained model + a genome -> one prediction track per class."""

import itertools
import os

import numpy as np

from ..baselines import SELECTION_WINDOWS, beside_baselines
from ..errors import InputError
from ..fileio import (atomic_output, atomic_paths, check_output_folders, check_outputs, class_file_stems,
                      folder_lock, provenance_lines)
from ..genome import Genome
from ..peaks import merge_intervals, read_peaks
from ..progress import ProgressBar, message
from ..settings import TRUNK_MODES, PredictSettings
from ..windows import read_windows_table
from .common import (add_backend_threads_argument, add_batch_size_argument, add_genome_argument, add_model_argument,
                     add_rc_average_argument, auto_or, command_line, defaults_from, import_keras, make_parser,
                     non_negative_int, positive_int, probability, run_tool, settings_from)

PROG = "deepgmap-predict-bigwig"

DESCRIPTION = f"""\
Score a genome with a model from deepgmap-train-model and write one track per class,
DIR/<class>.bw (bigWig, the genome's chromosome sizes in its header) or .bedGraph.

Windows of the model's size start every --stride bp (by default the stride the model's
training windows used); windows with more than --max-n-fraction N are not scored. Each
stride-sized bin gets the MEAN predicted probability of the scored windows that overlap it:
a value of 0.8 means the windows around this bin were called positive for the class with
probability 0.8 on average. Bins that no scored window overlaps (N gaps) have no value.
A model trained on flanked windows (make-training-windows --flank) reads each window with its
flanks, and its prediction counts for the labelled window only (windows, N filter, bins).
Any genome works, also another species than the training one.
The values are probabilities at the genome's class balance: the model file records how much
its training windows over-represent positives (make-training-windows --keep-negatives) and
every prediction is corrected for it (a model file trained before this record stays at its
training windows' balance; the log says which).

--peaks-out DIR  per class, DIR/<class>.narrowPeak of predicted regions: a summit is a bin
                 at or above the threshold with no higher bin within 2h+1 bins, where
                 h = window // (2 x stride); its region is the summit bin and up to h bins
                 each side that stay at or above the threshold: at most window + stride bp
                 however long the stretch above it, as a high bin only says that a window
                 around it scored high. score = 1000 x the summit value, column 10 the
                 summit's offset; '#' header lines give the threshold and how it was chosen
--threshold T    auto (default): per class the model's threshold, chosen at the end of
                 training as the smallest whose calls on the valid chromosomes' windows
                 reach train-model --peak-precision (0.5 for a model file without one;
                 chosen on windows, applied to bins that average the windows over them);
                 or a number, for every class
--rc-average     average each window's prediction with its reverse complement's
                 (the FRSS network is strand-equivariant in its first layers only)
--evaluate TSV   score the windows of a make-training-windows table by coordinates:
                 AUROC/AUPRC per class and split, and the paper's overfitting test (AUPRC on
                 a training chromosome next to the held-out chromosomes), written to
                 DIR/evaluation.tsv and DIR/evaluation.html (ROC and PR curves); beside the
                 held-out scores, baselines that need no training on the same windows:
                 GC content (each window's G+C fraction as the score, as is) and chance
                 (AUROC 0.5, AUPRC the share of positives)
--motif-db MEME  with --evaluate, one more baseline: the best known motif, per class the
                 motif of the MEME file with the best AUROC on up to {SELECTION_WINDOWS:,}
                 train-split windows, scanned on both strands over the held-out windows
--saliency       with --regions: per class DIR/<class>.saliency.bw, per base what the
                 observed nucleotide adds to the class logit beyond the mean of the four
                 nucleotides there (0 at N), by --saliency-method:
                   gradient (default): the corrected gradient x input (Majdandzic et al.
                            2023): d(logit)/d(input) at the base minus its mean over the
                            four channels (the original's sum over the channels kept the
                            part no base change can produce)
                   ism      in-silico saturation mutagenesis, the exact value the
                            gradient approximates: logit minus the mean logit with each
                            of the four nucleotides there (about 3 model runs per base)
"""


def build_parser():
    parser = make_parser(PROG, DESCRIPTION)
    add_model_argument(parser)
    add_genome_argument(parser, "genome to score")
    parser.add_argument("--chroms", nargs="+", metavar="CHROM", help="score only these chromosomes")
    parser.add_argument("--regions", metavar="BED", help="score only windows overlapping these regions")
    parser.add_argument("--stride", type=positive_int, help="bp between window starts (default: the training windows')")
    parser.add_argument("--max-n-fraction", type=probability, help="skip windows with more N than this")
    add_rc_average_argument(parser)
    add_batch_size_argument(parser)
    parser.add_argument("--trunk", choices=TRUNK_MODES,
                        help="shared: compute the convolutions of overlapping windows once (2.5x faster on a CPU, "
                             "same values; models that cannot are scored per window); per-window: each window "
                             "alone (faster on a GPU, whole batches in parallel); auto: shared on a CPU only")
    add_backend_threads_argument(parser, "reading windows ahead of them and the --evaluate table")
    parser.add_argument("--outdir", required=True, help="folder for the tracks (created if missing)")
    parser.add_argument("--bedgraph", action="store_true", help="write bedGraph text instead of bigWig")
    parser.add_argument("--peaks-out", metavar="DIR", help="folder for one narrowPeak per class")
    parser.add_argument("--threshold", type=auto_or(probability), default="auto", metavar="T",
                        help="--peaks-out: lowest summit value, 'auto' (the model's, see above) or a number")
    parser.add_argument("--evaluate", metavar="TSV", help="windows table to evaluate the model on")
    parser.add_argument("--motif-db", metavar="MEME",
                        help="--evaluate: known motifs (MEME format, e.g. the JASPAR 2024 clusters) for the motif "
                             "baseline (see above)")
    parser.add_argument("--max-eval-windows", type=non_negative_int, default=0,
                        help="--evaluate: at most this many windows per split (seeded subset; 0: all)")
    parser.add_argument("--saliency", action="store_true", help="write saliency tracks over --regions")
    parser.add_argument("--saliency-method", choices=("gradient", "ism"), default="gradient",
                        help="--saliency: gradient (corrected gradient x input) or ism (in-silico mutagenesis, "
                             "exact, about 3 model runs per base)")
    defaults_from(parser, PredictSettings, leave=("stride", "threads"))  # the model's stride; -p's own default
    return parser


def regions_on(genome, path):
    """Merged regions per chromosome, checked against the chromosome ends."""
    regions = read_peaks(path, "regions file")
    merged = {}
    for chrom, intervals in regions.by_chrom.items():
        if chrom not in genome.lengths:
            raise InputError(f"{path}:{intervals.lines[0]}: chromosome {chrom} is not in the genome")
        beyond = intervals.ends > genome.lengths[chrom]
        if beyond.any():
            raise InputError(f"{path}:{intervals.lines[np.argmax(beyond)]}: region ends past the end of {chrom} "
                             f"({genome.lengths[chrom]:,} bp)")
        merged[chrom] = merge_intervals(intervals.starts, intervals.ends)
    return merged


def run(args, argv):
    check_output_folders(args.outdir, args.peaks_out)
    import_keras(onednn=True, threads=args.threads)
    from ..calibration import describe_probabilities, peak_thresholds
    from ..evaluation import (TrackedRows, check_table_for_model, evaluate, evaluation_curves_png, evaluation_html,
                              evaluation_rows, evaluation_table)
    from ..models.files import load_model
    from ..motifs import read_motif_db
    from ..predict import check_chroms_in_genome, predict_tracks
    from ..tracks import ChromosomeTrack, TrackWriters, peak_half_width, threshold_regions

    if args.saliency and not args.regions:
        raise InputError("--saliency needs --regions (saliency is per base: give the regions to explain)")
    if args.saliency_method == "ism" and not args.saliency:
        raise InputError("--saliency-method ism needs --saliency (and --regions)")
    if args.motif_db and not args.evaluate:
        raise InputError("--motif-db needs --evaluate (the motif is a baseline for the evaluation)")
    table = read_windows_table(args.evaluate, args.threads) if args.evaluate else None
    known_motifs = read_motif_db(args.motif_db) if args.motif_db else None
    model, info = load_model(args.model, compile=False)
    stride = args.stride or info.stride
    settings = settings_from(PredictSettings, args, stride=stride, rc_average=args.rc_average or info.rc_average)
    settings.check()
    classes = info.class_names
    stems = class_file_stems(classes)
    thresholds = peak_thresholds(info, args.threshold)
    half_width = peak_half_width(info.labelled_window, stride)
    extension = ".bedGraph" if args.bedgraph else ".bw"
    track_paths = [os.path.join(args.outdir, stem + extension) for stem in stems]
    evaluation_files = {kind: os.path.join(args.outdir, f"evaluation.{kind}") for kind in ("tsv", "png", "html")}
    with folder_lock(args.outdir, PROG), Genome(args.genome) as genome:
        check_outputs(*(evaluation_files.values() if table is not None else []), seekable=track_paths,
                      inputs=[args.model, args.genome, args.regions, args.evaluate, args.motif_db])
        chroms = [c for c in genome.names if c in set(args.chroms)] if args.chroms else genome.names
        check_chroms_in_genome(genome, args.chroms or [])
        regions = regions_on(genome, args.regions) if args.regions else None
        if regions is not None:
            chroms = [c for c in chroms if c in regions]
        tracked = None
        if table is not None:
            check_table_for_model(table, info, genome)
            if (table.input_length, table.flank) == (info.window, info.flank):  # the tracks' windows are the rows'
                tracked = TrackedRows(table, evaluation_rows(table, args.max_eval_windows))
        message(f"{PROG}: values are {describe_probabilities(info)}")
        if args.peaks_out:
            for name, (value, how) in zip(classes, thresholds):
                message(f"{name} peaks: threshold {value:.4g}, {how}")
        peak_rows = [[] for _ in classes]
        with atomic_paths(track_paths) as temporary:
            writers = TrackWriters(temporary, genome.lengths, args.bedgraph)
            try:
                pieces = predict_tracks(model, info, genome, chroms, settings, regions, tracked)
                scored = False
                for _, chromosome in itertools.groupby(pieces, key=lambda piece: piece.chrom):
                    kept = []  # peaks need the whole chromosome's track; the bigWigs take it piece by piece
                    for piece in chromosome:
                        scored = True
                        writers.add(piece)
                        if args.peaks_out:
                            kept.append(piece)
                    if kept:
                        track = ChromosomeTrack.joined(kept)
                        for i in range(len(classes)):
                            peak_rows[i].append((track.chrom, *threshold_regions(track, i, thresholds[i][0],
                                                                                 settings.stride, half_width)))
                if not scored:  # raised here: the empty tracks are not kept
                    raise InputError(f"no window to score on {', '.join(chroms[:5]) or 'any chromosome'}: every "
                                     f"window there (after --chroms and --regions) has more than --max-n-fraction "
                                     f"{settings.max_n_fraction:g} N or leaves its chromosome")
            finally:
                writers.close()
        if args.peaks_out:
            regions_rule = (f"summit bins at or above the threshold with no higher bin within {2 * half_width + 1} "
                            f"bins ({stride} bp each), widened by up to {half_width} bin(s) on each side that stay at "
                            f"or above it")
            headers = [provenance_lines("predict-bigwig", command_line(PROG, argv), **{
                "class": name, "values": describe_probabilities(info), "threshold": f"{value:.6g}",
                "threshold_rule": how, "regions": regions_rule}) for name, (value, how) in zip(classes, thresholds)]
            write_peak_files(args.peaks_out, stems, peak_rows, headers)
        if args.saliency:
            write_saliency(model, info, genome, regions, args.outdir, stems, args.saliency_method,
                           args.batch_size)
        if table is not None:
            results = evaluate(model, genome, table, args.batch_size, args.max_eval_windows, threads=args.threads,
                               known_motifs=known_motifs, rc_average=settings.rc_average, tracked=tracked)
            with atomic_output(evaluation_files["tsv"]) as stream:
                stream.write(evaluation_table(results, command_line(PROG, argv)).encode())
            curves = evaluation_curves_png(results, table)
            with atomic_output(evaluation_files["png"]) as stream:
                stream.write(curves)
            with atomic_output(evaluation_files["html"]) as stream:
                stream.write(evaluation_html(results, info, curves).encode())
            for split, scores in results["splits"].items():
                message(f"{split}: " + beside_baselines(scores, results["baselines"].get(split, [])))
    message(f"{PROG}: wrote {len(track_paths)} track(s) to {args.outdir}")


def write_peak_files(folder, stems, peak_rows, headers):
    """Per class a narrowPeak, its '##' header lines first (provenance and threshold)."""
    os.makedirs(folder, exist_ok=True)
    for stem, rows, header in zip(stems, peak_rows, headers):
        lines, number = [line + "\n" for line in header], 0
        for chrom, starts, ends, values, summits in rows:
            for start, end, value, summit in zip(starts.tolist(), ends.tolist(), values.tolist(), summits.tolist()):
                number += 1
                lines.append(f"{chrom}\t{start}\t{end}\t{stem}_region_{number}\t{min(int(round(1000 * value)), 1000)}"
                             f"\t.\t{value:.6f}\t-1\t-1\t{summit}\n")
        with atomic_output(os.path.join(folder, f"{stem}.narrowPeak")) as stream:
            stream.write("".join(lines).encode())


def write_saliency(model, info, genome, regions, folder, stems, method, batch_size):
    from ..interpret import region_saliency, region_windows
    from ..tracks import BigWigWriter

    window, n_classes = info.window, len(stems)
    paths = [os.path.join(folder, f"{stem}.saliency.bw") for stem in stems]
    chroms = [c for c in genome.names if c in regions]
    total_windows = sum(len(region_windows(int(start), int(end), window, genome.lengths[chrom]))
                        for chrom in chroms for start, end in zip(*regions[chrom]))
    with atomic_paths(paths) as temporary, ProgressBar(total_windows, f"saliency ({method})", "windows") as bar:
        handles = [BigWigWriter(path, genome.lengths) for path in temporary]
        try:
            for chrom in chroms:
                for start, end in zip(*regions[chrom]):
                    values = region_saliency(model, genome, chrom, int(start), int(end), window, n_classes, method,
                                             batch_size, bar)
                    for i, handle in enumerate(handles):
                        handle.add_entries(chrom, int(start), values=values[:, i].astype(np.float64).tolist(),
                                           span=1, step=1)
        finally:
            for handle in handles:
                handle.close()


def main(argv=None):
    return run_tool(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
