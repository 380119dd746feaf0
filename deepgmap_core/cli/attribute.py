"""deepgmap-attribute: per-base contributions of a model's classes over regions."""

import os

import numpy as np

from .. import __version__
from ..attribution import ATTRIBUTION_METHODS, REFERENCES, AttributionSettings
from ..errors import InputError
from ..fileio import atomic_paths, check_output_folders, check_outputs, class_file_stems
from ..genome import Genome
from ..peaks import read_peaks
from ..progress import message
from .common import (add_backend_threads_argument, add_batch_size_argument, add_genome_argument, add_model_argument,
                     add_seed_argument, chromosome_list, command_line, defaults_from, import_keras, make_parser,
                     positive_int, run_tool, settings_from)

PROG = "deepgmap-attribute"

DESCRIPTION = """\
Explain a model from deepgmap-train-model base by base: for each region of --regions (BED or
narrowPeak) one model window centred on its summit (narrowPeak column 10) or middle, and per
class what each base contributes to the class logit (before the sigmoid).

--method grad-x-input (default)  the gradient at each base minus its mean over the four
                                 nucleotides (corrected gradient x input): one backward pass
         integrated-gradients    the mean gradient on a straight path from --references
                                 random references (--reference shuffle: the window's own
                                 bases in a random order; gc: random bases at its G+C
                                 fraction) in --steps steps; the contributions add up to
                                 logit(window) - logit(reference), and how far they miss
                                 (completeness error) is reported
         ism                     in-silico saturation mutagenesis: the logit with each of the
                                 four nucleotides at each base, minus their mean; exact, about
                                 3 model runs per base
Hypothetical contributions (what each of the four nucleotides would contribute) are what
TF-MoDISco clusters; the observed base's contribution is the browser track.

Outputs (at least one):
-o FILE.h5      one-hot windows and hypothetical contributions of every class (A,C,G,T order),
                window coordinates and provenance, for deepgmap-discover-motifs (also read by
                modisco-lite's `modisco motifs -i FILE.h5`: hyp_scores is the --class class)
--tracks DIR    per class DIR/<class>.contributions.bw: the observed base's contribution
                (where windows overlap, their mean)

--chroms: held-out (default) explains only the regions on the model's held-out chromosomes
(test split, else valid), whose contributions are not those of sequence the model was
fitted to; 'all', or a list of chromosomes.
"""


def build_parser():
    parser = make_parser(PROG, DESCRIPTION)
    add_model_argument(parser)
    add_genome_argument(parser, "genome the regions are on")
    parser.add_argument("--regions", required=True, metavar="BED",
                        help="regions to explain (BED or narrowPeak, e.g. a class's peaks)")
    parser.add_argument("--chroms", default="held-out", metavar="held-out|all|CHROMS",
                        help="regions on these chromosomes (comma-separated), 'all', or 'held-out' (see above)")
    parser.add_argument("--method", choices=ATTRIBUTION_METHODS, help="see above")
    parser.add_argument("--steps", type=positive_int, help="integrated-gradients: steps of the path")
    parser.add_argument("--references", type=positive_int, help="integrated-gradients: references per window")
    parser.add_argument("--reference", choices=REFERENCES, help="integrated-gradients: see above")
    parser.add_argument("--class", dest="modisco_class", metavar="CLASS",
                        help="-o: the class modisco-lite reads as hyp_scores (default: the first)")
    add_batch_size_argument(parser, "windows (or mutants) per model call")
    add_seed_argument(parser)
    add_backend_threads_argument(parser)
    parser.add_argument("-o", "--output", metavar="H5", help="contributions for deepgmap-discover-motifs (HDF5)")
    parser.add_argument("--tracks", metavar="DIR", help="folder for one contribution bigWig per class")
    defaults_from(parser, AttributionSettings)
    return parser


def run(args, argv):
    if not args.output and not args.tracks:
        raise InputError("nothing to write: give -o FILE.h5 and/or --tracks DIR")
    check_outputs(seekable=[args.output], inputs=[args.model, args.genome, args.regions])
    check_output_folders(args.tracks)
    regions_file = read_peaks(args.regions, "regions file")
    import_keras(onednn=True, threads=args.threads)
    from ..attribution import default_chroms, region_windows_around, write_attributions
    from ..models.files import load_model

    model, info = load_model(args.model, compile=False)
    shape = model.input_shape
    if len(model.inputs) != 1 or len(shape) != 3 or shape[1] not in (None, info.window) or shape[2] != 4:
        raise InputError(f"{args.model}: the model does not read one one-hot sequence of {info.window} bp")
    classes = info.class_names
    if args.modisco_class and args.modisco_class not in classes:
        raise InputError(f"--class {args.modisco_class!r}: the model's classes are {', '.join(classes)}")
    chroms = {"held-out": lambda: default_chroms(info), "all": lambda: None}.get(
        args.chroms, lambda: set(chromosome_list(args.chroms)))()
    settings = settings_from(AttributionSettings, args)
    settings.check()
    with Genome(args.genome) as genome:
        regions = region_windows_around(regions_file, genome, info.window, chroms)
        message(f"{PROG}: {len(regions.starts):,} regions of {args.regions} on "
                f"{', '.join(dict.fromkeys(regions.chroms))}, {regions.window} bp windows, {args.method}")
        if args.tracks:
            os.makedirs(args.tracks, exist_ok=True)
        track_paths = [os.path.join(args.tracks, f"{stem}.contributions.bw")
                       for stem in class_file_stems(classes)] if args.tracks else []
        h5_paths = [args.output] if args.output else []
        provenance = {"tool": PROG, "deepgmap_version": __version__, "command": command_line(PROG, argv),
                      "model": os.path.basename(args.model), "method": args.method, "seed": args.seed,
                      "regions": os.path.basename(args.regions)}
        if args.method == "integrated-gradients":
            provenance.update(steps=args.steps, references=args.references, reference=args.reference)
        with atomic_paths(h5_paths + track_paths, suffix=".tmp") as temporary:
            completeness = write_attributions(
                model, genome, regions, classes, settings, temporary[0] if args.output else None,
                temporary[len(h5_paths):], provenance, info.rc_average,
                classes.index(args.modisco_class) if args.modisco_class else 0)
    if completeness is not None:
        errors, differences = np.abs(completeness)
        message(f"completeness of integrated gradients: the contributions of a window miss logit(window) - "
                f"logit(reference) (median {np.median(differences):.3g}) by {np.median(errors):.3g} (median), "
                f"{errors.max():.3g} at most")
    message(f"{PROG}: wrote {', '.join(h5_paths + track_paths)}")


def main(argv=None):
    return run_tool(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
