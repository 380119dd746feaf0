"""Special output paths, outputs that are inputs, and signals (issue 29, classes 1-3 and the closed
stdout / stderr of class 9).

A regular output is written under a temporary name and renamed; a link keeps being a link (its
target is written); stdout ('-'), FIFOs, devices and descriptors are written through, or refused in
one line before any work when the format cannot stream (bigWig, HDF5, Keras). An output that is an
input or another output, however spelled, is refused before any work. SIGTERM and SIGHUP end a run
as Ctrl-C does: one line, no temporary file or child process left, earlier outputs kept, exit
128 + the signal's number.
"""

import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pysam
import pytest
from test_reliability import COMMANDS, INPUTS, OLD, check_failure, prepare, snapshot

from deepgmap_core.cli import make_training_windows, score_variants


def executable(command):
    return str(Path(sys.executable).parent / f"deepgmap-{command.replace('_', '-')}")


def windows_argv(test_data, output):
    return ["--genome", str(test_data / "genome.fa.gz"), "--peaks", str(test_data / "CTCF.bed"),
            "--valid-chroms", "chr22", "-o", str(output)]


def variants_argv(test_data, output):
    return ["--model", str(test_data / "model.keras"), "--genome", str(test_data / "genome.fa.gz"),
            "--vcf", str(test_data / "variants.vcf"), "-o", str(output)]


def regular_run(module, argv_for, tmp_path, capsys, name="out.tsv"):
    """The bytes a run writes to a regular file, and the path it wrote them to (the same path then
    stands for a FIFO or a link: the provenance lines hold it)."""
    output = tmp_path / "regular" / name
    output.parent.mkdir()
    assert module.main(argv_for(output)) == 0
    capsys.readouterr()
    data = output.read_bytes()
    output.unlink()
    return output, data


def leftovers(*folders):
    """Hidden temporary files (and lock files) left in `folders`."""
    return [path.name for folder in folders for path in Path(folder).iterdir() if path.name.startswith(".")]


def one_error_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, lines[-5:]
    return lines[0]


# --- special output paths -------------------------------------------------------------------------------------


TABLE_WRITERS = {"make_training_windows": (make_training_windows, windows_argv),
                 "score_variants": (score_variants, variants_argv)}


def through_a_fifo(module, argv_for, tmp_path, capsys, name="out.tsv"):
    """(bytes a reader of a FIFO output received, bytes the same run writes to a regular file, the FIFO)."""
    output, expected = regular_run(module, argv_for, tmp_path, capsys, name)
    os.mkfifo(output)
    received = []
    reader = threading.Thread(target=lambda: received.append(output.read_bytes()), daemon=True)
    reader.start()
    assert module.main(argv_for(output)) == 0
    reader.join(60)
    return received, expected, output


@pytest.mark.parametrize("command", TABLE_WRITERS)
def test_table_written_to_a_fifo_reaches_its_reader(command, test_data, tmp_path, capsys):
    module, argv_for = TABLE_WRITERS[command]
    received, expected, output = through_a_fifo(module, lambda path: argv_for(test_data, path), tmp_path, capsys)
    assert received == [expected]
    assert stat.S_ISFIFO(os.lstat(output).st_mode)  # written through, not replaced by a file
    assert leftovers(output.parent) == []


def test_bgzip_output_to_a_fifo_is_streamed(test_data, tmp_path, capsys):
    """A .gz output is BGZF written through the FIFO: the reader gets the bytes a file would hold."""
    received, expected, _ = through_a_fifo(score_variants, lambda path: variants_argv(test_data, path), tmp_path,
                                           capsys, name="v.vcf.gz")
    assert received == [expected] and expected[:2] == b"\x1f\x8b"


def test_table_written_to_a_process_substitution(test_data, tmp_path, capsys):
    """`-o >(command)`: the path is /dev/fd/N, a pipe's end the shell handed over; it is written to
    as that descriptor."""
    output, expected = regular_run(make_training_windows, lambda path: windows_argv(test_data, path), tmp_path,
                                   capsys)
    read_end, write_end = os.pipe()
    received = []
    reader = threading.Thread(target=lambda: received.append(os.fdopen(read_end, "rb").read()), daemon=True)
    reader.start()
    argv = windows_argv(test_data, f"/dev/fd/{write_end}")
    run = subprocess.run([executable("make_training_windows"), *argv], pass_fds=(write_end,), capture_output=True)
    os.close(write_end)
    reader.join(60)
    assert run.returncode == 0, run.stderr
    provenance = f"-o /dev/fd/{write_end}".encode()
    assert received == [expected.replace(f"-o {output}".encode(), provenance)]


@pytest.mark.parametrize("command", TABLE_WRITERS)
def test_table_written_through_a_symlink_lands_in_its_target(command, test_data, tmp_path, capsys):
    module, argv_for = TABLE_WRITERS[command]
    output, expected = regular_run(module, lambda path: argv_for(test_data, path), tmp_path, capsys)
    target = tmp_path / "elsewhere" / "table.txt"
    target.parent.mkdir()
    target.write_bytes(OLD)
    output.symlink_to(target)
    assert module.main(argv_for(test_data, output)) == 0
    assert output.is_symlink() and os.readlink(output) == str(target)
    assert target.read_bytes() == expected
    assert leftovers(output.parent, target.parent) == []


def without_matching(argv):
    """`argv` less Tomtom's matching against the motif database (minutes on a shared CPU)."""
    for option in ("--tomtom", "--motif-db"):
        if option in argv:
            at = argv.index(option)
            argv = argv[:at] + argv[at + 2:]
    return argv


@pytest.mark.parametrize("command", COMMANDS)
def test_symlinked_output_keeps_the_link_and_writes_its_target(command, test_data, tmp_path, capsys):
    """Every command: its first output a link to an earlier output in another folder."""
    module, _, outputs = COMMANDS[command]
    out = tmp_path / "out"
    argv = prepare(tmp_path, test_data, command, out)
    if command in ("motif_extract", "discover_motifs"):
        argv = without_matching(argv)
    link = out / outputs[0]
    target = tmp_path / "elsewhere" / f"target{''.join(link.suffixes)}"
    target.parent.mkdir()
    shutil.move(link, target)
    link.symlink_to(target)
    code = module.main(argv)
    assert code == 0, capsys.readouterr().err[-2000:]
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() != OLD  # (bam-to-peaks against itself as control: no peak, an empty file)
    assert leftovers(link.parent, target.parent) == []


def null_device(tmp_path):
    """A character device that discards what is written: a private one where this user may make
    devices (a bug would then replace it, not the machine's /dev/null), else /dev/null."""
    path = tmp_path / "null"
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError:
        return Path(os.devnull)
    return path


def test_text_output_to_a_null_device_is_written_through(test_data, tmp_path, capsys):
    device = null_device(tmp_path)
    assert make_training_windows.main(windows_argv(test_data, device)) == 0
    assert stat.S_ISCHR(os.lstat(device).st_mode)
    assert leftovers(device.parent) == []


def test_two_outputs_on_one_device_are_allowed(test_data, tmp_path, capsys):
    """Discarding two outputs is no clash: a device is not a file either would replace."""
    device = null_device(tmp_path)
    argv = variants_argv(test_data, device) + ["--tsv", str(device)]
    assert score_variants.main(argv) == 0
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_output_linked_to_a_descriptor_goes_to_that_descriptor(test_data, tmp_path, capsys):
    """A link to /proc/self/fd/1 is this process's stdout: the table comes out there, the link stays
    (the issue's `-o /dev/stdout`, without touching the machine's /dev/stdout)."""
    output, expected = regular_run(make_training_windows, lambda path: windows_argv(test_data, path), tmp_path,
                                   capsys)
    output.symlink_to("/proc/self/fd/1")
    run = subprocess.run([executable("make_training_windows"), *windows_argv(test_data, output)],
                         capture_output=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout == expected
    assert output.is_symlink() and os.readlink(output) == "/proc/self/fd/1"


UNSTREAMABLE = {  # command -> its output that must be a regular file
    "merge_bigwigs": "merged.bw", "attribute": "a.h5", "train_model": "m.keras", "predict_bigwig": "tracks/CTCF.bw"}


@pytest.mark.parametrize("command", UNSTREAMABLE)
def test_fifo_for_a_format_that_cannot_stream_is_refused(command, test_data, tmp_path, capsys):
    module = COMMANDS[command][0]
    out = tmp_path / "out"
    argv = prepare(tmp_path, test_data, command, out)
    fifo = out / UNSTREAMABLE[command]
    fifo.unlink()
    os.mkfifo(fifo)
    check_failure(module, argv, out, capsys, [str(fifo)])
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("command", ["merge_bigwigs", "attribute"])
def test_stdout_for_a_format_that_cannot_stream_is_refused(command, test_data, tmp_path, capsys, monkeypatch):
    module = COMMANDS[command][0]
    out = tmp_path / "out"
    argv = prepare(tmp_path, test_data, command, out)
    argv[argv.index("-o") + 1] = "-"
    monkeypatch.chdir(out)  # a file named '-' would appear here
    check_failure(module, argv, out, capsys, ["-: is standard output"])


# --- an output that is an input, two outputs on one file ---------------------------------------------------------


def spelled(path, how, tmp_path):
    """The file `path` named again: the same, by a hard link, a symlink, or a './' spelling."""
    if how == "same":
        return str(path)
    if how == "hard link":
        other = tmp_path / f"hard_{path.name}"
        os.link(path, other)
        return str(other)
    if how == "symlink":
        other = tmp_path / f"link_{path.name}"
        other.symlink_to(path)
        return str(other)
    return f"{path.parent}/./{path.name}"


OUTPUT_IS_INPUT = [  # command, the input given as an output too, the output's option, how it is spelled
    ("bam_to_peaks", "bam", "--peaks", "hard link"),
    ("motif_extract", "motifs", "-o", "symlink"),
    ("make_training_windows", "peaks", "-o", "./"),
    ("score_variants", "vcf", "-o", "symlink"),
    ("merge_bigwigs", "bigwig2", "-o", "hard link"),
    ("discover_motifs", "motifs", "--tomtom", "./"),
    ("train_model", "windows", "--metrics", "hard link"),
    ("attribute", "ctcf_model", "-o", "symlink"),
]


@pytest.mark.parametrize("command, name, option, how", OUTPUT_IS_INPUT,
                         ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in OUTPUT_IS_INPUT])
def test_output_that_is_an_input_is_refused(command, name, option, how, test_data, tmp_path, capsys):
    module = COMMANDS[command][0]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    copy = inputs / INPUTS[name]
    shutil.copy(test_data / INPUTS[name], copy)
    if name == "bam":
        shutil.copy(test_data / (INPUTS[name] + ".bai"), inputs)
    out = tmp_path / "out"
    argv = prepare(tmp_path, test_data, command, out, {name: str(copy)})
    argv[argv.index(option) + 1] = spelled(copy, how, tmp_path)
    before = snapshot(tmp_path)
    check_failure(module, argv, out, capsys, [str(copy), INPUTS[name]])
    assert snapshot(tmp_path) == before


def test_output_in_a_folder_that_is_an_input_is_refused(test_data, tmp_path, capsys):
    """predict-bigwig's outputs are named in its --outdir: an evaluated table there by the name of
    the evaluation it writes is refused, not replaced."""
    out = tmp_path / "out"
    argv = prepare(tmp_path, test_data, "predict_bigwig", out)
    table = out / "tracks" / "evaluation.tsv"
    shutil.copy(test_data / INPUTS["windows"], table)
    argv[argv.index("--evaluate") + 1] = str(table)
    check_failure(COMMANDS["predict_bigwig"][0], argv, out, capsys, [f"the output is the input {table}"])


TWO_OUTPUTS = [  # command, (option, output) given on one file, how the second is spelled
    ("train_model", ["--metrics", "-o"], "./"),
    ("bam_to_peaks", ["--qc", "--peaks"], "symlink"),
    ("motif_extract", ["--tomtom", "-o"], "hard link"),
    ("score_variants", ["--tsv", "-o"], "same"),
    ("discover_motifs", ["--tomtom", "-o"], "symlink"),
]


@pytest.mark.parametrize("command, options, how", TWO_OUTPUTS, ids=[c[0] for c in TWO_OUTPUTS])
def test_two_outputs_on_one_file_are_refused(command, options, how, test_data, tmp_path, capsys):
    module = COMMANDS[command][0]
    out = tmp_path / "out"
    argv = prepare(tmp_path, test_data, command, out)
    if options[0] not in argv:
        argv += [options[0], "placeholder"]
    first = Path(argv[argv.index(options[1]) + 1])
    argv[argv.index(options[0]) + 1] = spelled(first, how, tmp_path)
    before = snapshot(tmp_path)
    check_failure(module, argv, out, capsys, ["two outputs on one file"])
    assert snapshot(tmp_path) == before


# --- closed stdout and stderr ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", TABLE_WRITERS)
def test_stdout_closed_with_dash_output_is_one_line(command, test_data, tmp_path):
    argv = TABLE_WRITERS[command][1](test_data, "-")
    run = subprocess.run([executable(command), *argv], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, preexec_fn=lambda: os.close(1), cwd=tmp_path)
    assert run.returncode == 1
    assert one_error_line(run.stderr).endswith("-: standard output is closed (give a file name to -o)")
    assert os.listdir(tmp_path) == []


def test_stderr_closed_the_run_still_succeeds(test_data, tmp_path, capsys):
    output, expected = regular_run(make_training_windows, lambda path: windows_argv(test_data, path), tmp_path,
                                   capsys)
    run = subprocess.run([executable("make_training_windows"), *windows_argv(test_data, output)],
                         capture_output=True, preexec_fn=lambda: os.close(2))
    assert run.returncode == 0 and run.stdout == b""
    assert output.read_bytes() == expected


def test_stderr_closed_a_failure_still_says_why(test_data, tmp_path):
    """The error line goes to stdout when stderr is closed, never a silent exit 1."""
    argv = windows_argv(test_data, tmp_path / "w.tsv")
    argv[argv.index("--peaks") + 1] = str(tmp_path / "missing.bed")
    run = subprocess.run([executable("make_training_windows"), *argv], capture_output=True, text=True,
                         preexec_fn=lambda: os.close(2))
    assert run.returncode == 1
    assert one_error_line(run.stdout) == (f"deepgmap-make-training-windows: error: {tmp_path}/missing.bed: "
                                          f"peak file not found")
    assert os.listdir(tmp_path) == []


# --- signals --------------------------------------------------------------------------------------------------


def many_variants(test_data, path, count=20000):
    """A VCF of `count` SNVs on chr20 with the genome's own reference bases (a run long enough to stop)."""
    with pysam.FastaFile(str(test_data / "genome.fa.gz")) as genome:
        sequence = genome.fetch("chr20", 100000, 100000 + 2 * count).upper()
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    for i in range(0, 2 * count, 2):
        ref = sequence[i]
        if ref in "ACGT":
            lines.append(f"chr20\t{100001 + i}\tv{i}\t{ref}\t{'C' if ref != 'C' else 'G'}\t50\tPASS\t.")
    path.write_text("\n".join(lines) + "\n")
    return path


def children_naming(text):
    """Processes whose command line holds `text` (a run's private folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(entry.name)
        except OSError:
            continue
    return found


def wait_for(condition, process, seconds=180):
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"the run ended before it was stopped: {process.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "the run never got to work"
        time.sleep(0.05)


def test_signal_handlers_are_restored_after_a_run(test_data, tmp_path, capsys):
    """Tools called in-process (tests, a workflow in Python) leave the caller's handlers as they were."""
    before = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    assert make_training_windows.main(windows_argv(test_data, tmp_path / "w.tsv")) == 0
    assert {number: signal.getsignal(number) for number in before} == before


SIGNALLED = {  # command -> the folder of its temporary output, or None: MACS3's folder in TMPDIR
    "predict_bigwig": "tracks", "score_variants": ".", "bam_to_peaks": None}


@pytest.mark.parametrize("command, number", [(command, signal.SIGTERM) for command in SIGNALLED]
                         + [("score_variants", signal.SIGHUP)], ids=lambda value: getattr(value, "name", value))
def test_signal_mid_run_ends_it_cleanly(command, number, test_data, tmp_path):
    out = tmp_path / "out"
    temporary_folder = tmp_path / "tmp"
    temporary_folder.mkdir()
    replaced = {"vcf": str(many_variants(test_data, tmp_path / "many.vcf"))} if command == "score_variants" else {}
    argv = prepare(tmp_path, test_data, command, out, replaced)
    if command == "predict_bigwig":  # the whole genome, no evaluation: long enough to be stopped
        argv = argv[:argv.index("--regions")] + ["--outdir", str(out / "tracks")]
    before = snapshot(out)
    process = subprocess.Popen([executable(command), *argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(temporary_folder)})
    if SIGNALLED[command] is None:  # stopped while MACS3 runs
        wait_for(lambda: children_naming(str(temporary_folder)), process)
    else:  # stopped while predicting, its temporary outputs open
        wait_for(lambda: leftovers(out / SIGNALLED[command]), process)
        time.sleep(0.5)
    process.send_signal(number)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + number
    lines = stderr.strip().splitlines()
    assert lines[-1] == f"deepgmap-{command.replace('_', '-')}: terminated ({number.name})", lines[-5:]
    assert "Traceback" not in stderr
    assert snapshot(out) == before  # earlier outputs byte-identical, no temporary file left
    assert os.listdir(temporary_folder) == []  # MACS3's folder, the readers' private folders gone
    assert children_naming(str(temporary_folder)) == []
