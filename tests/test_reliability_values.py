"""Issue 29, class 6: values that cannot be right are refused, not used.

Every probability, fraction, rate and count on every command line is range-checked by argparse
(exit 2, one line naming the option, nothing written); MEME motif files whose rows are counts,
do not sum to 1, are zero, negative or not a number, or that name two motifs alike are refused
naming the motif; class names must be distinct and not blank; and a run whose result would be
empty (no window, nothing scored) fails with one line rather than writing it."""

import os
import re

import numpy as np
import pytest
from test_cli_arguments import REQUIRED, arguments
from test_reliability import OLD, check_failure, prepare, snapshot

from deepgmap_core import bounds
from deepgmap_core.cli import (attribute, bam_to_peaks, discover_motifs, make_training_windows, motif_extract,
                               predict_bigwig, score_variants, train_model)
from deepgmap_core.errors import InputError
from deepgmap_core.motifs import ROW_SUM_TOLERANCE, read_motif_db

# Per command, each option that is a probability, a fraction, a rate or a count, with its range.
RANGES = {
    bam_to_peaks: {"--qvalue": bounds.POSITIVE_PROBABILITY, "--min-frip": bounds.PROBABILITY,
                   "--min-cfrip": bounds.PROBABILITY, "--min-peaks": bounds.COUNT, "--min-mapq": bounds.MAPQ},
    make_training_windows: {"--max-n-fraction": bounds.PROBABILITY, "--min-window-fraction": bounds.PROBABILITY,
                            "--min-peak-fraction": bounds.PROBABILITY, "--keep-negatives": bounds.PROBABILITY,
                            "--window": bounds.POSITIVE_COUNT, "--stride": bounds.POSITIVE_COUNT,
                            "--flank": bounds.COUNT, "--seed": bounds.SEED},
    train_model: {"--width-scale": bounds.POSITIVE, "--learning-rate": bounds.NON_NEGATIVE,
                  "--max-minutes": bounds.NON_NEGATIVE, "--peak-precision": bounds.POSITIVE_PROBABILITY,
                  "--epochs": bounds.POSITIVE_COUNT, "--steps-per-epoch": bounds.COUNT, "--batch-size": bounds.COUNT,
                  "--patience": bounds.COUNT, "--max-valid-windows": bounds.COUNT, "--max-test-windows": bounds.COUNT,
                  "--seed": bounds.SEED},
    predict_bigwig: {"--threshold": bounds.PROBABILITY, "--max-n-fraction": bounds.PROBABILITY,
                     "--stride": bounds.POSITIVE_COUNT, "--batch-size": bounds.POSITIVE_COUNT,
                     "--max-eval-windows": bounds.COUNT},
    score_variants: {"--max-ref-mismatch": bounds.PROBABILITY, "--saliency-window": bounds.COUNT,
                     "--batch-size": bounds.POSITIVE_COUNT},
    motif_extract: {"--scale": bounds.POSITIVE, "--min-ic": bounds.NON_NEGATIVE,
                    "--am-learning-rate": bounds.POSITIVE, "--am-steps": bounds.POSITIVE_COUNT,
                    "--top": bounds.POSITIVE_COUNT, "--seed": bounds.SEED},
    attribute: {"--steps": bounds.POSITIVE_COUNT, "--references": bounds.POSITIVE_COUNT,
                "--batch-size": bounds.POSITIVE_COUNT, "--seed": bounds.SEED},
    discover_motifs: {"--top": bounds.POSITIVE_COUNT, "--width": bounds.COUNT, "--max-seqlets": bounds.POSITIVE_COUNT,
                      "--sliding-window": bounds.POSITIVE_COUNT, "--flank": bounds.COUNT,
                      "--min-seqlets": bounds.POSITIVE_COUNT},
}


def outside(span):
    """Values just outside `span` (the open end itself, else one step beyond), and nan for numbers."""
    step = 1 if span.integer else 0.5
    values = [span.low if span.low_open else span.low - step]
    if span.high is not None:
        values.append(span.high + step)
    return [repr(value) for value in values] + ([] if span.integer else ["nan"])


def range_cases():
    for command, options in RANGES.items():
        for option, span in options.items():
            for value in outside(span):
                yield pytest.param(command, option, value, id=f"{command.__name__.split('.')[-1]}{option}={value}")


@pytest.mark.parametrize("command, option, value", list(range_cases()))
def test_a_value_out_of_range_is_a_usage_error_and_nothing_is_written(command, option, value, test_data, tmp_path,
                                                                       capsys):
    parser = command.build_parser()
    action = next(a for a in parser._actions if option in a.option_strings)
    assert action.type.bounds == RANGES[command][option]  # the option is checked against the range of the table
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stopped:
        command.main(arguments(command, [f"{option}={value}"], test_data, out))
    stderr = capsys.readouterr().err
    assert stopped.value.code == 2
    assert stderr.count("\n") == 1 and f"argument {option}" in stderr and "Traceback" not in stderr, stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("value", ["0", "1", "0.37", "auto"])
def test_a_threshold_within_range_is_taken(value, test_data, tmp_path):
    args = predict_bigwig.build_parser().parse_args(arguments(predict_bigwig, ["--threshold", value], test_data,
                                                              tmp_path))
    assert args.threshold == (value if value == "auto" else float(value))


def test_every_command_has_its_ranged_options_in_the_table():
    """No probability or count option escapes the table above (a new option must be added to it)."""
    for command in REQUIRED:
        ranged = {option for action in command.build_parser()._actions if hasattr(action.type, "bounds")
                  for option in action.option_strings if option.startswith("--")}
        assert ranged == set(RANGES[command]), command.__name__


# --- MEME motif files --------------------------------------------------------------------------

MOTIF = "C002:CREB_XBP1:bZIP"  # a motif of the JASPAR 2024 clusters file of test-data


def motif_rows(text, name):
    """(first, end) line indexes of the matrix rows of motif `name` in MEME `text` lines."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line == f"MOTIF {name}") + 2
    end = first
    while end < len(lines) and len(lines[end].split()) == 4:
        end += 1
    return lines, first, end


def meme_variant(test_data, tmp_path, variant):
    """The test-data JASPAR file with one motif changed as `variant` says."""
    text = (test_data / "JASPAR2024_CORE_clusters.meme").read_text()
    lines, first, end = motif_rows(text, MOTIF)
    matrix = np.array([[float(x) for x in line.split()] for line in lines[first:end]])
    if variant == "counts":
        matrix = matrix * 20
    elif variant == "half":
        matrix = matrix / 2
    elif variant == "zero_row":
        matrix[1] = 0
    elif variant == "negative":
        matrix[1] = [-0.1, 0.6, 0.25, 0.25]
    if variant in ("counts", "half", "zero_row", "negative"):
        lines[first:end] = [" ".join(f"{p:.6f}" for p in row) for row in matrix]
    elif variant == "nan":
        lines[first + 1] = "nan 0.25 0.25 0.25"
    elif variant == "duplicate":
        lines[first - 2 + lines[first - 2:].index("") + 1] = f"MOTIF {MOTIF}"  # the next motif takes its name
    path = tmp_path / f"motifs_{variant}.meme"
    path.write_text("\n".join(lines) + "\n")
    return path


MEME_VARIANTS = {"counts": "sums to 20", "half": "sums to 0.5", "zero_row": "all zeros",
                 "negative": "negative", "nan": "not a number", "duplicate": "appears twice"}


@pytest.mark.parametrize("command", ["motif_extract", "discover_motifs"])
@pytest.mark.parametrize("variant", list(MEME_VARIANTS))
def test_a_motif_file_that_is_not_probabilities_is_refused_naming_the_motif(command, variant, test_data, tmp_path,
                                                                             capsys):
    module = {"motif_extract": motif_extract, "discover_motifs": discover_motifs}[command]
    out = tmp_path / "out"
    out.mkdir()
    path = meme_variant(test_data, tmp_path, variant)
    argv = prepare(tmp_path, test_data, command, out, {"motifs": str(path)})
    check_failure(module, argv, out, capsys, [f"{path}: motif {MOTIF}"])
    with pytest.raises(InputError, match=re.escape(MEME_VARIANTS[variant])):
        read_motif_db(str(path))


def test_train_model_refuses_a_motif_file_of_counts_before_training(test_data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    path = meme_variant(test_data, tmp_path, "counts")
    argv = prepare(tmp_path, test_data, "train_model", out, {"motifs": str(path)})
    check_failure(train_model, argv, out, capsys, [f"{path}: motif {MOTIF}, row 1: sums to 20"])


def test_the_real_motif_files_are_read_whole(test_data, shared_data):
    """Every motif of the JASPAR 2024 and HOCOMOCO v12 files (and test-data's) is read, under its
    own name, with rows summing to 1: counted on the text, apart from the reader."""
    paths = [test_data / "JASPAR2024_CORE_clusters.meme", *sorted((shared_data / "motifs").glob("*.meme"))]
    assert len(paths) == 3
    for path in paths:
        text = path.read_text()
        motif_lines = [line.split()[1] for line in text.splitlines() if line.startswith("MOTIF")]
        names, matrices = read_motif_db(str(path))
        assert [name.split()[0] for name in names] == motif_lines
        widths = [int(w) for w in re.findall(r"\bw=\s*(\d+)", text)]
        assert [len(m) for m in matrices] == widths
        assert max(np.abs(m.sum(axis=1) - 1).max() for m in matrices) < ROW_SUM_TOLERANCE / 100


# --- class names -------------------------------------------------------------------------------

def table_with_classes(test_data, tmp_path, names):
    """test-data/windows.tsv with its two class names replaced."""
    lines = (test_data / "windows.tsv").read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith("#chrom"))
    lines[index] = "#chrom\tstart\tend\tsplit\t" + "\t".join(names) + "\n"
    path = tmp_path / "windows_classes.tsv"
    path.write_text("".join(lines))
    return path


NAME_CASES = {"duplicate": (["CTCF", "CTCF"], "class name(s) CTCF used twice"),
              "empty": (["CTCF", ""], "class name '' is blank"), "blank": (["  ", "CTCF"], "class name '  ' is blank"),
              "hidden": (["CTCF", ".x"], "class name '.x' is blank, starts with '.'")}


@pytest.mark.parametrize("names, expected", list(NAME_CASES.values()), ids=list(NAME_CASES))
@pytest.mark.parametrize("command", ["train_model", "predict_bigwig"])
def test_a_windows_table_with_repeated_or_blank_class_names_is_refused(command, names, expected, test_data, tmp_path,
                                                                       capsys):
    out = tmp_path / "out"
    out.mkdir()
    table = table_with_classes(test_data, tmp_path, names)
    argv = prepare(tmp_path, test_data, command, out, {"windows": str(table)})
    check_failure({"train_model": train_model, "predict_bigwig": predict_bigwig}[command], argv, out, capsys,
                  [f"{table}: {expected}"])


@pytest.mark.parametrize("names, expected", list(NAME_CASES.values()), ids=list(NAME_CASES))
def test_make_training_windows_refuses_repeated_or_blank_names(names, expected, test_data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    argv = prepare(tmp_path, test_data, "make_training_windows", out)
    argv += ["--peaks", str(test_data / "CTCF.bed"), str(test_data / "H3K4me3.narrowPeak"), "--names", *names]
    check_failure(make_training_windows, argv, out, capsys, [f"--names: {expected}"])


# --- empty results -----------------------------------------------------------------------------

def test_a_flank_longer_than_any_chromosome_is_refused_before_tiling(test_data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    argv = prepare(tmp_path, test_data, "make_training_windows", out) + ["--flank", "30000000"]
    check_failure(make_training_windows, argv, out, capsys, ["--flank 30000000"])


@pytest.mark.parametrize("blacklisted, flank, expected", [
    ("chr20\t0\t5000000\nchr22\t0\t21000000\n", [], "touched the blacklist, 0 train negatives were not sampled"),
    ("chr22\t10000000\t11000000\n", ["--flank", "10000000"], "the rest had no room for --flank 10000000"),
], ids=["all_blacklisted", "flank_fits_only_there"])
def test_a_genome_without_a_usable_window_writes_no_table(blacklisted, flank, expected, test_data, tmp_path, capsys):
    """Every window touches the blacklist, or has no room for its flanks elsewhere (the flank fits
    the longest chromosome only around the blacklisted windows): one line, no empty table."""
    out = tmp_path / "out"
    out.mkdir()
    blacklist = tmp_path / "blacklist.bed"
    blacklist.write_text(blacklisted)
    argv = prepare(tmp_path, test_data, "make_training_windows", out, {"blacklist": str(blacklist)})
    check_failure(make_training_windows, argv + flank, out, capsys, [expected])


def test_predict_bigwig_with_regions_that_hold_no_scorable_window_writes_no_track(test_data, tmp_path, capsys):
    """chr20 of test-data starts with 60 kb of N, as hg19's: no window there is scored."""
    out = tmp_path / "out"
    out.mkdir()
    regions = tmp_path / "gap.bed"
    regions.write_text("chr20\t0\t20000\n")
    argv = prepare(tmp_path, test_data, "predict_bigwig", out, {"regions": str(regions)})
    argv = argv[:argv.index("--evaluate")] + argv[argv.index("--outdir"):]
    check_failure(predict_bigwig, argv, out, capsys, ["no window to score on chr20"])


def test_score_variants_with_no_scorable_record_writes_no_vcf(test_data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    header = [line for line in (test_data / "variants.vcf").read_text().splitlines() if line.startswith("#")]
    vcf = tmp_path / "unscorable.vcf"
    vcf.write_text("\n".join(header + ["chr20\t118560\tsv1\tC\t<DEL>\t50\tPASS\t.",
                                       "chr20\t189784\tm1\tA\tG,T\t50\tPASS\t."]) + "\n")
    argv = prepare(tmp_path, test_data, "score_variants", out, {"vcf": str(vcf)})
    check_failure(score_variants, argv, out, capsys, [f"{vcf}: no record could be scored"])


def test_a_vcf_of_scorable_and_unscorable_records_is_written(test_data, tmp_path):
    """One scorable record is enough: the others are annotated as not scored, as before."""
    out = tmp_path / "out"
    out.mkdir()
    lines = (test_data / "variants.vcf").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    vcf = tmp_path / "mixed.vcf"
    vcf.write_text("\n".join(lines[:first + 1] + ["chr20\t189784\tm1\tA\tG,T\t50\tPASS\t."]) + "\n")
    argv = prepare(tmp_path, test_data, "score_variants", out, {"vcf": str(vcf)})
    assert score_variants.main(argv) == 0
    assert (out / "v.vcf").read_bytes() != OLD and snapshot(out).keys() == {"v.vcf"}
