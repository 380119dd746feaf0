"""Numbers on every command line are checked before any work: nan and infinities (which Python's
float() accepts), negative seeds (numpy refuses them later with a traceback), zero threads or
batches; each is one line on stderr naming the option, exit code 2, nothing written. Threads
also take deepTools' 'max' and 'max/2'. Output paths are checked before any work too."""

import os
import subprocess
import sys

import pytest

from deepgmap_core.cli import (attribute, bam_to_peaks, discover_motifs, make_training_windows, motif_extract,
                               predict_bigwig, score_variants, train_model)
from deepgmap_core.cli.common import available_cores

# Required arguments of each command with files that exist, so only the option under test is wrong.
REQUIRED = {
    bam_to_peaks: ["--bam", "{data}/K562_H3K4me3.chr22_20M.bam", "--peaks", "{out}"],
    make_training_windows: ["--genome", "{data}/genome.fa.gz", "--peaks", "{data}/CTCF.bed", "-o", "{out}"],
    train_model: ["--genome", "{data}/genome.fa.gz", "--windows", "{data}/windows.tsv", "-o", "{out}"],
    predict_bigwig: ["--model", "{data}/CTCF_chr20_frss_bn.keras", "--genome", "{data}/genome.fa.gz",
                     "--outdir", "{out}"],
    motif_extract: ["--model", "{data}/CTCF_chr20_frss_bn.keras", "-o", "{out}"],
    score_variants: ["--model", "{data}/CTCF_chr20_frss_bn.keras", "--genome", "{data}/genome.fa.gz",
                     "--vcf", "{data}/variants.vcf", "-o", "{out}"],
    attribute: ["--model", "{data}/CTCF_chr20.keras", "--genome", "{data}/genome.fa.gz", "--regions",
                "{data}/CTCF.bed", "-o", "{out}"],
    discover_motifs: ["-i", "{data}/CTCF_chr22_attributions.h5", "-o", "{out}"],
}

CASES = [
    (bam_to_peaks, ["--min-frip", "nan"], "--min-frip: must be a finite number"),
    (bam_to_peaks, ["--qvalue", "inf"], "--qvalue: must be a finite number"),
    (bam_to_peaks, ["--min-mapq", "-1"], "--min-mapq: must be within [0, 255]"),
    (bam_to_peaks, ["-p", "0"], "--threads: must be >= 1"),
    (make_training_windows, ["--seed", "-1"], "--seed: must be within [0, 4294967295]"),
    (make_training_windows, ["--keep-negatives", "nan"], "--keep-negatives: must be a finite number"),
    (make_training_windows, ["--stride", "0"], "--stride: must be >= 1"),
    (make_training_windows, ["--window", "1.5"], "--window: not a whole number"),
    (make_training_windows, ["--window", "0"], "--window: must be >= 1"),
    (make_training_windows, ["--flank", "-1"], "--flank: must be >= 0"),
    (train_model, ["--learning-rate", "nan"], "--learning-rate: must be a finite number"),
    (train_model, ["--width-scale=-inf"], "--width-scale: must be a finite number"),
    (train_model, ["--max-minutes", "infinity"], "--max-minutes: must be a finite number"),
    (train_model, ["--epochs", "0"], "--epochs: must be >= 1"),
    (train_model, ["--seed", "-3"], "--seed: must be within [0, 4294967295]"),
    (train_model, ["-p", "max/3"], "--threads: not a whole number"),
    (predict_bigwig, ["--batch-size", "0"], "--batch-size: must be >= 1"),
    (predict_bigwig, ["--max-n-fraction", "nan"], "--max-n-fraction: must be a finite number"),
    (predict_bigwig, ["--stride", "-300"], "--stride: must be >= 1"),
    (motif_extract, ["--scale", "nan"], "--scale: must be a finite number"),
    (motif_extract, ["--am-steps", "0"], "--am-steps: must be >= 1"),
    (score_variants, ["--max-ref-mismatch", "nan"], "--max-ref-mismatch: must be a finite number"),
    (score_variants, ["--saliency-window", "-5"], "--saliency-window: must be >= 0"),
    (motif_extract, ["--scale", "0"], "--scale: must be > 0"),
    (predict_bigwig, ["--threshold", "high"], "--threshold: not a number: 'high'"),
    (attribute, ["--steps", "0"], "--steps: must be >= 1"),
    (attribute, ["--seed", "-1"], "--seed: must be within [0, 4294967295]"),
    (attribute, ["-p", "0"], "--threads: must be >= 1"),
    (attribute, ["--method", "saliency"], "--method: invalid choice"),
    (discover_motifs, ["--min-seqlets", "0"], "--min-seqlets: must be >= 1"),
    (discover_motifs, ["--width", "-200"], "--width: must be >= 0"),
]


def arguments(command, extra, test_data, out):
    return [a.format(data=test_data, out=out) for a in REQUIRED[command]] + extra


@pytest.mark.parametrize("command, extra, expected", CASES,
                         ids=[f"{c.__name__.split('.')[-1]}{''.join(e)}" for c, e, _ in CASES])
def test_bad_numbers_are_one_line_and_nothing_is_written(command, extra, expected, test_data, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stopped:
        command.main(arguments(command, extra, test_data, out))
    assert stopped.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "Traceback" not in stderr and expected in stderr, stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("text, expected", [("max", available_cores()), ("max/2", max(1, available_cores() // 2)),
                                            ("3", 3)])
def test_threads_take_max_and_half_of_it(text, expected, test_data, tmp_path):
    parser = train_model.build_parser()
    args = parser.parse_args(arguments(train_model, ["-p", text], test_data, tmp_path / "out"))
    assert args.threads == expected


OUTPUT_OPTIONS = {bam_to_peaks: "--qc", make_training_windows: "-o", train_model: "--metrics",
                  motif_extract: "--logos", score_variants: "-o", predict_bigwig: "--peaks-out", attribute: "--tracks",
                  discover_motifs: "--report"}


@pytest.mark.parametrize("command", list(OUTPUT_OPTIONS), ids=lambda c: c.__name__.split(".")[-1])
def test_outputs_are_checked_before_any_work(command, test_data, tmp_path, capsys):
    """An output in a missing folder, or a folder where a file is to be written (a file where a
    folder is), stops the command at once with one line: not after an hour of training."""
    out = tmp_path / "out"
    (tmp_path / "a_file").write_text("")
    option = OUTPUT_OPTIONS[command]
    wrong = str(tmp_path / "a_file") if command in (predict_bigwig, attribute) else str(tmp_path / "missing" / "x")
    args = arguments(command, [], test_data, out)
    if option in args:
        args[args.index(option) + 1] = wrong
    else:
        args += [option, wrong]
    assert command.main(args) == 1
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and ("does not exist" in stderr or "not an output folder" in stderr), stderr
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


def test_quiet_keeps_only_warnings_and_errors_and_verbose_names_the_device(test_data, tmp_path, capsys):
    windows = ["--genome", str(test_data / "genome.fa.gz"), "--peaks", str(test_data / "CTCF.bed"),
               "--valid-chroms", "chr22", "-o", str(tmp_path / "w.tsv")]
    assert make_training_windows.main(windows) == 0
    assert "CTCF" in capsys.readouterr().err  # the summary table
    assert make_training_windows.main(windows + ["-q"]) == 0
    assert capsys.readouterr().err == ""
    assert make_training_windows.main(windows[:-4] + ["-q", "-o", str(tmp_path / "w.tsv")]) == 0
    assert capsys.readouterr().err.startswith("warning: no --test-chroms or --valid-chroms")
    assert motif_extract.main(["-v", "--model", str(test_data / "model.keras"), "-o", str(tmp_path / "k.meme")]) == 0
    assert ", computing on " in capsys.readouterr().err  # the device the backend found
    with pytest.raises(SystemExit):
        motif_extract.main(["-v", "-q", "--model", str(test_data / "model.keras"), "-o", str(tmp_path / "k.meme")])
    assert "not allowed with argument" in capsys.readouterr().err


BOUND_POOLS = ("import sys, tensorflow as tf; from deepgmap_core.cli import motif_extract; "
               "code = motif_extract.main(sys.argv[1:]); "
               "print(tf.config.threading.get_intra_op_parallelism_threads(), "
               "tf.config.threading.get_inter_op_parallelism_threads()); sys.exit(code)")


def test_threads_bound_tensorflows_own_pools(test_data, tmp_path):
    """-p N of a Keras tool is the size of TensorFlow's intra- and inter-op pools (a Galaxy job
    given one slot uses one core), in a fresh process as on a command line."""
    run = subprocess.run([sys.executable, "-c", BOUND_POOLS, "-p", "1", "-q", "--model",
                          str(test_data / "CTCF_chr20_frss_bn.keras"), "-o", str(tmp_path / "k.meme")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1", "1"]
    assert (tmp_path / "k.meme").read_text().startswith("MEME version")
