"""deepgmap-train-model: genome FASTA + training windows -> a trained model (.keras)."""

from ..baselines import SELECTION_WINDOWS, beside_baselines
from ..calibration import DEFAULT_PEAK_PRECISION, calibration_lines
from ..distribute import DISTRIBUTE_MODES
from ..fileio import atomic_output, check_outputs, output_lock
from ..genome import Genome
from ..models import DEFAULT_MODEL, model_names
from ..progress import message
from ..settings import TrainSettings
from ..recipes import RECIPES, __doc__ as RECIPES_DOC
from ..windows import read_windows_table
from .common import (add_backend_threads_argument, add_genome_argument, add_seed_argument, command_line, defaults_from,
                     import_keras, make_parser, non_negative_float, non_negative_int, positive_float, positive_int,
                     positive_probability, run_tool, settings_from)

PROG = "deepgmap-train-model"
LOGGED_CLASSES = 10  # the log names this many classes' scores and thresholds; --metrics has them all
RECIPE_HELP = RECIPES_DOC.split("\n\n", 1)[1].strip()

DESCRIPTION = f"""\
Train one of the DeepGMAP paper's models on windows made by deepgmap-make-training-windows,
streaming their sequence from the genome FASTA (one-hot A,G,C,T on the fly, shuffled each
epoch under --seed; memory does not grow with the number of windows).

Models: {', '.join(model_names())} (default {DEFAULT_MODEL}).
The paper's eight are built as its code built them; conv3-frss-bn is an addition (an FRSS pair
with batch normalisation and global max-pooling) that learnt fastest on a CPU. The FRSS models
scan both strands in their first two convolutions with kernels rotated by 180 degrees. At full
width conv4-frss costs ~13 GFLOP per training sample (~9 samples/s on 2 CPU cores): use
--width-scale (e.g. 0.25) on a CPU, full width on a GPU, which is used when one is visible.

Recipes (--recipe): {RECIPE_HELP}
--max-minutes stops training when its budget is spent (checked between batches), scores
that epoch and keeps the best model so far: set it below a job's wall-time limit.

Every epoch the model is scored on the 'valid' split (AUROC and AUPRC per class); the best
model by mean AUPRC is written to --output, and training stops after --patience epochs
without improvement. At the end the best model is scored on the 'test' split. A checkpoint
(OUTPUT.checkpoint.keras) and the best model so far (OUTPUT.best.keras) are written after each
epoch; --resume continues from them, unless they were trained with other settings or on another
windows table or genome (refused, naming what differs). OUTPUT itself is written once, at the
end: an interrupted or failed run leaves an existing OUTPUT as it was, and keeps the checkpoint
even when it fails after training (writing --metrics, --plot or --report).
The model file carries the class names, window size, one-hot order, model name and width,
the chromosome split, the seed, package versions and the metrics.

Probabilities: the table keeps only a fraction (--keep-negatives) of the train windows that
are negative for every class, so the network learns that balance. The model file records per
class the positive fraction of the train windows and of the train chromosomes they stand for
(negatives counted 1/keep times) and the logit offset between them; predict-bigwig and
score-variants apply it, so their values are probabilities at the genome's class balance.
Peak threshold: per class, the smallest threshold on the corrected predictions for the valid
windows whose calls reach --peak-precision (where none does, the threshold of the best F1,
and the model file says so); predict-bigwig --threshold auto calls peaks with it.

Baselines: the best model's valid and test scores are shown (metrics, report, last message)
beside scores that need no training, on the same windows: GC content (each window's G+C
fraction as the score, as is: below 0.5 where the sites are GC-poor), chance (AUROC 0.5, AUPRC
the share of positives) and, with --motif-db, the best known motif: per class, the motif of the
MEME file with the best AUROC on up to {SELECTION_WINDOWS:,} train windows, scanned on both strands
(log-odds against a uniform background) over the held-out windows.
"""

EPILOG = """\
example:
  deepgmap-train-model --genome hg19.fa.gz --windows windows.tsv.gz --model conv4-frss \\
      --width-scale 0.25 --epochs 5 --seed 1 -o model.keras --metrics metrics.tsv --report report.html
"""


def build_parser():
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    add_genome_argument(parser, "the genome the windows were made on")
    parser.add_argument("--windows", required=True, metavar="TSV", help="deepgmap-make-training-windows output")
    parser.add_argument("--model", choices=model_names(), help="architecture")
    parser.add_argument("--width-scale", type=positive_float, help="multiplies every filter and unit count")
    parser.add_argument("--recipe", choices=list(RECIPES),
                        help="how weights start and are updated (see above): default learns fast; paper is the "
                             "DeepGMAP paper's training")
    parser.add_argument("--epochs", type=positive_int, help="largest number of epochs")
    parser.add_argument("--steps-per-epoch", type=non_negative_int,
                        help="batches per epoch, i.e. between two scorings on the valid split "
                             "(0: one pass over the train windows)")
    parser.add_argument("--max-minutes", type=non_negative_float,
                        help="stop training when this many minutes are spent (checked between batches; the epoch "
                             "is then scored and the best model so far kept); 0: no limit")
    parser.add_argument("--batch-size", type=non_negative_int,
                        help="windows per batch (0: the recipe's: " +
                             ", ".join(f"{r.name} {r.batch_size}" for r in RECIPES.values()) + ")")
    parser.add_argument("--learning-rate", type=non_negative_float,
                        help="peak learning rate (0: the recipe's: " +
                             ", ".join(f"{r.name} {r.learning_rate:g}" for r in RECIPES.values()) + ")")
    parser.add_argument("--patience", type=non_negative_int,
                        help="epochs without improvement before stopping (0: never)")
    parser.add_argument("--max-valid-windows", type=non_negative_int,
                        help="score at most this many valid windows per epoch (a seeded subset; 0: all)")
    parser.add_argument("--max-test-windows", type=non_negative_int, help="the same for the final test scores")
    parser.add_argument("--motif-db", metavar="MEME",
                        help="known motifs (MEME format, e.g. the JASPAR 2024 clusters) for the motif baseline "
                             "(see above); GC content and chance are always shown")
    parser.add_argument("--peak-precision", type=positive_probability, default=DEFAULT_PEAK_PRECISION, metavar="P",
                        help="precision on the valid windows that each class's peak threshold must reach (see above)")
    add_seed_argument(parser)
    add_backend_threads_argument(parser, "reading the windows table and reading and encoding batches ahead of them "
                                         "(a GPU needs several)")
    parser.add_argument("--distribute", choices=DISTRIBUTE_MODES,
                        help="split every batch over replicas with tf.distribute (TensorFlow backend): mirrored = "
                             "the GPUs of this machine; multi-worker = several machines, each running this command "
                             "with its role in TF_CONFIG (worker 0 writes the model)")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT.checkpoint.keras if present")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL", help="the trained model (.keras)")
    parser.add_argument("--metrics", metavar="TSV", help="metrics per epoch and class, and of the best model")
    parser.add_argument("--report", metavar="HTML", help="self-contained HTML report with learning curves")
    parser.add_argument("--plot", metavar="PNG", help="the learning curves alone, as a picture")
    defaults_from(parser, TrainSettings)
    return parser


def run(args, argv):
    check_outputs(args.metrics, args.report, args.plot, seekable=[args.output],
                  inputs=[args.genome, args.windows, args.motif_db])
    import_keras(onednn=False, threads=args.threads)
    from ..training import learning_curves_png, metrics_table, report_html, train_model

    settings = settings_from(TrainSettings, args, loader_threads=args.threads, distribute=args.distribute or "")
    settings.check()
    table = read_windows_table(args.windows, args.threads)
    with output_lock(args.output, PROG), Genome(args.genome) as genome:
        _, info = train_model(genome, table, settings, args.output, command_line(PROG, argv), args.resume,
                              args.peak_precision, args.motif_db)
    if args.metrics:
        with atomic_output(args.metrics) as stream:
            stream.write(metrics_table(info).encode())
    if args.plot:
        with atomic_output(args.plot) as stream:
            stream.write(learning_curves_png(info))
    if args.report:
        with atomic_output(args.report) as stream:
            stream.write(report_html(info).encode())
    more = len(info.class_names) - LOGGED_CLASSES
    for split, scores in info.final_metrics.items():
        message(f"best model (epoch {info.state['best_epoch']}) on {split}: "
                + beside_baselines(scores[:LOGGED_CLASSES], info.baselines.get(split, []))
                + (f" and {more:,} more classes (--metrics has every class)" if more > 0 else ""))
    for line in calibration_lines(info)[:LOGGED_CLASSES]:
        message(line)
    if more > 0:
        message(f"{more:,} more classes calibrated: the model file has every class's threshold")


def main(argv=None):
    return run_tool(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
