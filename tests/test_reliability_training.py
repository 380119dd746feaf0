"""Reliability of training runs (issue 29): `--resume` only on the data its checkpoint was trained
on (windows table and genome fingerprinted); every output checked before training, and the
checkpoint kept whenever a run did not finish, so that `--resume` goes on from its last epoch; a
file-size limit (ulimit -f) named as such when loading a model, not blamed on the model."""

import contextlib
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from test_reliability import check_failure, fill_up, prepare, small_file_system, snapshot

from deepgmap_core.cli import train_model
from deepgmap_core.fileio import atomic_output, output_group, remove_when_committed
from deepgmap_core.fingerprints import STRETCH, sampled_starts
from deepgmap_core.models.files import METADATA_ENTRY, read_model_info

TINY_RUN = ["--width-scale", "0.05", "--epochs", "1", "--steps-per-epoch", "2", "--max-valid-windows", "100"]
LEFT_BESIDE = (".checkpoint.keras", ".best.keras")  # by a run that did not finish


def train_args(test_data, out, genome=None, windows=None):
    return ["--genome", str(genome or test_data / "genome.fa.gz"),
            "--windows", str(windows or test_data / "windows.tsv"), *TINY_RUN, "-o", str(out / "m.keras")]


@pytest.fixture(scope="module")
def trained(test_data, tmp_path_factory):
    """A model trained on test-data's windows and genome: stands in for its run's checkpoint."""
    out = tmp_path_factory.mktemp("trained")
    assert train_model.main(train_args(test_data, out)) == 0
    return out / "m.keras"


def left_by_an_unfinished_run(trained, out):
    """`out` holding an earlier model and the checkpoint and best model so far of a run that did not finish."""
    out.mkdir()
    (out / "m.keras").write_bytes(b"an earlier model")
    for suffix in LEFT_BESIDE:
        shutil.copy(trained, out / f"m.keras{suffix}")


def table_lines(test_data):
    lines = (test_data / "windows.tsv").read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#")]
    return header, lines[len(header):]


def edited_table(test_data, tmp_path, edit):
    header, rows = table_lines(test_data)
    path = tmp_path / "edited.tsv"
    path.write_text("".join(header + edit(rows)))
    return path


def flip_last_label(row):
    return row[:-2] + ("0" if row[-2] == "1" else "1") + "\n"


def shift_by_one(row):
    chrom, start, end, rest = row.split("\t", 3)
    return f"{chrom}\t{int(start) + 1}\t{int(end) + 1}\t{rest}"


def plain_genome(test_data, tmp_path, edit):
    """test-data's genome as a plain FASTA with `edit(text, offset_of)` applied (offset_of(chrom, position):
    the byte of a base in the text, 60 bases a line)."""
    text = bytearray(gzip.decompress((test_data / "genome.fa.gz").read_bytes()))

    def offset_of(chrom, position):
        first = text.index(b"\n", text.index(f">{chrom} ".encode())) + 1
        return first + position + position // 60

    edit(text, offset_of)
    path = tmp_path / "genome.fa"
    path.write_bytes(bytes(text))
    return path


def change_a_sampled_base(text, offset_of):
    """One base (not N) of chr20's sixth sampled stretch turned into another base."""
    start = sampled_starts(5_000_000)[5]
    offset = next(offset for offset in (offset_of("chr20", p) for p in range(start, start + STRETCH))
                  if text[offset] in b"ACGTacgt")
    text[offset] = b"CATGcatg"[b"ACGTacgt".index(text[offset])]


def lengthen_chr22(text, offset_of):
    assert text.endswith(b"\n") and len(text) - offset_of("chr22", 0) == 21_000_000 * 61 // 60  # chr22 ends the file
    text += b"ACGT\n"


ROWS = 4828  # of test-data/windows.tsv
OTHER_DATA = {  # the same classes and settings, another windows table or genome: (input, its edit, what is named)
    "rows_removed": ("windows", lambda rows: rows[5:], f"windows table of {ROWS:,} windows, this run {ROWS - 5:,}"),
    "labels_flipped": ("windows", lambda rows: [flip_last_label(row) if i % 97 == 0 else row
                                                for i, row in enumerate(rows)], "windows table: its labels differ"),
    "window_shifted": ("windows", lambda rows: [shift_by_one(rows[0])] + rows[1:],
                       "windows table: its coordinates differ"),
    "split_changed": ("windows", lambda rows: [rows[0].replace("\ttrain\t", "\ttest\t")] + rows[1:],
                      "windows table: its splits differ"),
    "base_changed": ("genome", change_a_sampled_base, "genome: chr20's sequence differs"),
    "length_changed": ("genome", lengthen_chr22, "genome: chr22 of 21,000,000 bp, this run 21,000,004 bp"),
}


@pytest.mark.parametrize("case", list(OTHER_DATA))
def test_resume_refuses_another_windows_table_or_genome(case, trained, test_data, tmp_path, capsys):
    """One line naming what differs, nothing written, the checkpoint kept."""
    out = tmp_path / "out"
    left_by_an_unfinished_run(trained, out)
    which, edit, named = OTHER_DATA[case]
    other = edited_table(test_data, tmp_path, edit) if which == "windows" else plain_genome(test_data, tmp_path, edit)
    check_failure(train_model, train_args(test_data, out, **{which: other}) + ["--resume"], out, capsys,
                  [f"checkpoint of another run ({named}"])


def resumed_without_training(args, out, capsys):
    """Resumed after the checkpoint's epoch 1, no epoch trained again, the model written and the checkpoint
    and best-so-far files gone; its stderr."""
    assert train_model.main(args + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert f"resuming from {out / 'm.keras.checkpoint.keras'} after epoch 1" in err
    assert "epoch 1: train loss" not in err
    assert [record["epoch"] for record in read_model_info(str(out / "m.keras")).state["history"]] == [1]
    assert "m.keras" in os.listdir(out)
    assert [name for name in os.listdir(out) if name.startswith(".") or name.endswith(LEFT_BESIDE)] == []
    return err


def test_resume_accepts_the_same_table_gzipped_and_the_genome_soft_masked(trained, test_data, tmp_path, capsys):
    """The fingerprints are of the table's content and of the bases the model reads, not of the files."""
    out = tmp_path / "out"
    left_by_an_unfinished_run(trained, out)
    table = tmp_path / "windows.tsv.gz"
    table.write_bytes(gzip.compress((test_data / "windows.tsv").read_bytes()))

    def soft_mask_chr20(text, offset_of):
        first, last = offset_of("chr20", 0), offset_of("chr22", 0)
        text[first:last] = bytes(text[first:last]).lower()

    genome = plain_genome(test_data, tmp_path, soft_mask_chr20)
    err = resumed_without_training(train_args(test_data, out, genome=genome, windows=table), out, capsys)
    assert "cannot check" not in err
    assert read_model_info(str(out / "m.keras")).training_data == read_model_info(str(trained)).training_data


def test_a_checkpoint_without_a_fingerprint_resumes_with_a_warning(trained, test_data, tmp_path, capsys):
    """Written before checkpoints recorded their data: refusing would lose the epochs of a run interrupted
    before an upgrade, so it resumes, saying what cannot be checked."""
    out = tmp_path / "out"
    left_by_an_unfinished_run(trained, out)
    checkpoint = out / "m.keras.checkpoint.keras"
    with zipfile.ZipFile(trained) as source, zipfile.ZipFile(checkpoint, "w") as target:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename == METADATA_ENTRY:
                info = json.loads(data)
                del info["training_data"]
                data = json.dumps(info)
            target.writestr(entry, data)
    err = resumed_without_training(train_args(test_data, out), out, capsys)
    (warning,) = [line for line in err.splitlines() if "cannot check" in line]
    assert str(checkpoint) in warning and "windows table and genome" in warning


def test_a_late_failure_keeps_the_checkpoint_and_resume_goes_on_from_it(test_data, tmp_path, capsys):
    """--report on a full disk fails after training (its folder is writable when checked): the earlier
    outputs stand, the checkpoint and best model so far are kept, and --resume trains no epoch again."""
    out = tmp_path / "out"
    out.mkdir()
    for name in ("m.keras", "m.tsv"):
        (out / name).write_bytes(b"an earlier output")
    args = train_args(test_data, out) + ["--metrics", str(out / "m.tsv")]
    with small_file_system(tmp_path) as mount:
        (mount / "r.html").write_bytes(b"an earlier report")
        fill_up(mount)
        before = snapshot(mount)
        assert train_model.main(args + ["--report", str(mount / "r.html")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert "epoch 1: train loss" in "\n".join(err) and "Traceback" not in "\n".join(err)
        assert err[-1].startswith("deepgmap-train-model: error: ") and "r.html" in err[-1], err[-3:]
        assert snapshot(mount) == before
    assert sorted(os.listdir(out)) == ["m.keras", "m.keras.best.keras", "m.keras.checkpoint.keras", "m.tsv"]
    assert (out / "m.keras").read_bytes() == (out / "m.tsv").read_bytes() == b"an earlier output"
    assert read_model_info(str(out / "m.keras.checkpoint.keras")).state["epoch"] == 1
    report = tmp_path / "r.html"
    err = resumed_without_training(args + ["--report", str(report)], out, capsys)
    assert (out / "m.tsv").read_bytes() != b"an earlier output" and report.stat().st_size > 0, err


@pytest.mark.parametrize("fails", [False, True])
def test_a_file_removed_when_committed_goes_only_with_a_finished_run(fails, tmp_path):
    """Removed after the group's outputs are in place; kept when the group fails (the run can resume)."""
    checkpoint = tmp_path / "m.keras.checkpoint.keras"
    checkpoint.write_bytes(b"epoch 3")
    with pytest.raises(RuntimeError) if fails else contextlib.nullcontext(), output_group():
        with atomic_output(str(tmp_path / "m.tsv")) as stream:
            stream.write(b"metrics")
        remove_when_committed(str(checkpoint))
        assert checkpoint.read_bytes() == b"epoch 3"  # still there until the group ends
        if fails:
            raise RuntimeError("a later output failed")
    assert sorted(os.listdir(tmp_path)) == (["m.keras.checkpoint.keras"] if fails else ["m.tsv"])


@pytest.mark.parametrize("option", ["--metrics", "--report", "--plot"])
def test_an_output_that_cannot_be_written_fails_before_training(option, test_data, tmp_path, capsys):
    """Checked before the genome is read or an epoch runs: one line naming it, no checkpoint made."""
    out = tmp_path / "out"
    out.mkdir()
    with small_file_system(tmp_path) as mount:
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        check_failure(train_model, train_args(test_data, out) + [option, str(mount / "x")], out, capsys,
                      [f"{mount / 'x'}: output folder {mount} is not writable"])
    assert os.listdir(out) == []


def limited_file_size(limit):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("command, plain_gzip_genome", [("predict_bigwig", False), ("attribute", False),
                                                         ("make_training_windows", True)])
def test_a_file_size_limit_is_named_not_the_input(command, plain_gzip_genome, test_data, tmp_path):
    """Keras unpacks a model into a temporary folder to load it, and a genome in plain gzip is
    decompressed into one: under `ulimit -f` below their size the error names the limit and the
    folder, not the (intact) model or genome."""
    out = tmp_path / "out"
    out.mkdir()
    replaced = {}
    if plain_gzip_genome:
        replaced["genome"] = tmp_path / "genome.fa.gz"
        replaced["genome"].write_bytes(gzip.compress(gzip.decompress((test_data / "genome.fa.gz").read_bytes())))
    argv = prepare(tmp_path, test_data, command, out, replaced)
    before = snapshot(out)
    program = Path(sys.executable).parent / f"deepgmap-{command.replace('_', '-')}"
    run = subprocess.run([str(program), *argv], capture_output=True, text=True, preexec_fn=limited_file_size(4096))
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and "Traceback" not in run.stderr, lines[-5:]
    assert "temporary folder" in lines[-1] and "file-size limit (ulimit -f) of 4,096 bytes" in lines[-1], lines
    assert "cannot load" not in lines[-1] and "cannot decompress" not in lines[-1]
    assert snapshot(out) == before


def test_an_output_past_the_file_size_limit_names_the_limit(test_data, tmp_path):
    """train-model's checkpoint passes a 40 KB `ulimit -f`: the error names it and the limit
    ("File too large" alone reads as a fault of the file), and nothing is left."""
    out = tmp_path / "out"
    out.mkdir()
    program = Path(sys.executable).parent / "deepgmap-train-model"
    run = subprocess.run([str(program), *train_args(test_data, out)], capture_output=True, text=True,
                         preexec_fn=limited_file_size(40 << 10))
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and "Traceback" not in run.stderr, lines[-5:]
    assert lines[-1].endswith(".keras: File too large: the file-size limit (ulimit -f) is 40,960 bytes"), lines[-3:]
    assert lines[-1].startswith(f"deepgmap-train-model: error: {out / 'm.keras'}.")
    assert os.listdir(out) == []


def test_a_file_size_limit_with_room_for_the_model_changes_nothing(test_data, tmp_path):
    """1 MB leaves room to unpack the model (733 KB of weights) and for the tracks: the same tracks
    as without a limit."""
    tracks = {}
    for limit in (None, 1 << 20):
        out = tmp_path / f"limit_{limit}"
        out.mkdir()
        argv = prepare(tmp_path, test_data, "predict_bigwig", out)
        argv = argv[:argv.index("--evaluate")] + argv[argv.index("--outdir"):]  # the tracks alone
        program = Path(sys.executable).parent / "deepgmap-predict-bigwig"
        run = subprocess.run([str(program), *argv], capture_output=True, text=True,
                             preexec_fn=limited_file_size(limit) if limit else None)
        assert run.returncode == 0, run.stderr[-2000:]
        tracks[limit] = snapshot(out / "tracks")
    assert tracks[None] == tracks[1 << 20] and sorted(tracks[None]) == ["CTCF.bw", "H3K4me3.bw"]
