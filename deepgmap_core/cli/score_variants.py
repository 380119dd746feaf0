"""deepgmap-score-variants: a trained model + a genome + a VCF -> per-class predicted effects."""

import contextlib
import os

from .. import __version__
from ..fileio import atomic_output, check_outputs, open_text
from ..genome import Genome
from ..progress import message
from ..settings import VariantSettings
from .common import (add_backend_threads_argument, add_batch_size_argument, add_genome_argument, add_model_argument,
                     add_rc_average_argument, command_line, defaults_from, import_keras, make_parser,
                     non_negative_int, probability, run_tool, settings_from)

PROG = "deepgmap-score-variants"

DESCRIPTION = """\
Predict the regulatory effect of each variant of a VCF with a model from
deepgmap-train-model: the window of the model's size centred on the variant is scored with
the reference allele and with the alternative allele (short indels too: each allele sits in
the middle of its own window), and per class the tool writes, as INFO fields declared in
the header (DGM_<class>_REF, _ALT, _DIFF, _LOGOR):

  REF, ALT   predicted probabilities with each allele, at the genome's class balance
             (corrected for the negative subsampling of the model's training windows,
             which the model file records; a model file from before that record gives
             them at its training windows' balance; ##deepgmap_probabilities says which)
  DIFF       ALT - REF
  LOGOR      logit(ALT) - logit(REF), the log odds ratio (natural log; the class-balance
             correction adds the same constant to both logits, so LOGOR does not depend on it)

Every input record is written out, in order. DGM_STATUS says whether it was scored or
why not: ref_mismatch (REF differs from the genome: flagged, never scored), multiallelic,
symbolic (<DEL>, breakends, *), no_change, too_long, chrom_not_in_genome, outside_chrom.
When most of the first 100 checked REF alleles mismatch (--max-ref-mismatch), the VCF is
taken to be on another assembly and the tool stops; chromosome names that differ only by
'chr' (1 vs chr1) stop it with the fix.

--saliency-window N  also the class saliency at the variant (DGM_<class>_SAL: the corrected
                     gradient x input, d(logit)/d(input) at the REF base minus its mean over
                     the four bases, which a base change can move; as predict-bigwig
                     --saliency) and its rank among the N bases around it
                     (DGM_<class>_SALRANK: 1 = the most salient base there)
--tsv FILE           the same values as a table, one row per record

The VCF is streamed in chunks (memory flat in its size); -o ending in .gz writes BGZF
(bgzip), ready for tabix.
"""

EPILOG = """\
example:
  deepgmap-score-variants --model model.keras --genome hg19.fa.gz --vcf variants.vcf.gz \\
      -o scored.vcf.gz --tsv effects.tsv --saliency-window 100
  bcftools view -i 'INFO/DGM_STATUS="scored" && INFO/DGM_CTCF_DIFF < -0.2' scored.vcf.gz
"""


def build_parser():
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    add_model_argument(parser)
    add_genome_argument(parser, "genome the VCF refers to")
    parser.add_argument("--vcf", required=True, help="variants (VCF, plain or gzip)")
    parser.add_argument("-o", "--output", required=True, metavar="VCF", help="annotated VCF (.gz: bgzip; '-': stdout)")
    parser.add_argument("--tsv", metavar="FILE", help="also a table of the effects, one row per record")
    add_rc_average_argument(parser)
    add_batch_size_argument(parser)
    add_backend_threads_argument(parser)
    parser.add_argument("--saliency-window", metavar="N", type=non_negative_int,
                        help="saliency at the variant and its rank among N bases around it (0: none)")
    parser.add_argument("--max-ref-mismatch", type=probability,
                        help="stop when more than this fraction of the first 100 checked REF alleles mismatch")
    defaults_from(parser, VariantSettings)
    return parser


def run(args, argv):
    check_outputs(args.output, args.tsv, inputs=[args.model, args.genome, args.vcf])
    import_keras(onednn=True, threads=args.threads)
    from ..calibration import describe_probabilities
    from ..models.files import load_model
    from ..variants import VcfReader, score_vcf, summary_lines

    model, info = load_model(args.model, compile=False)
    settings = settings_from(VariantSettings, args, rc_average=args.rc_average or info.rc_average)
    settings.check()
    provenance = {"version": __version__, "command": command_line(PROG, argv),
                  "model": f"{os.path.basename(args.model)} ({info.model}, width {info.width_scale}, "
                           f"window {info.window}, classes {','.join(info.class_names)}, "
                           f"trained on {','.join(info.split.get('train', []))}, seed {info.seed})",
                  "genome": os.path.basename(args.genome), "probabilities": describe_probabilities(info)}
    with Genome(args.genome) as genome, open_text(args.vcf, "VCF") as stream:
        reader = VcfReader(stream, args.vcf)
        tsv_output = atomic_output(args.tsv) if args.tsv else contextlib.nullcontext()
        with atomic_output(args.output) as vcf_stream, tsv_output as tsv_stream:
            counts = score_vcf(reader, model, info, genome, settings, vcf_stream, tsv_stream, provenance)
    message("\n".join(summary_lines(counts)))


def main(argv=None):
    return run_tool(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
