"""A corpus of bad inputs and failing outputs for every command (issue 17): each case must end with
exit code 1, one line on stderr that names the file at fault and no traceback, no new file left
behind, and the outputs of an earlier run byte-identical.

Input faults, for every file a command reads: missing, a folder, empty, garbage text, cut short
(a truncated gzip, BAM, bigWig, model or HDF5 file). Output faults, for every command: a missing
folder, a folder where a file goes (or a file where a folder goes), a read-only file system and
a full one (small tmpfs mounts: where mounting is not allowed, those cases are skipped, saying so).
"""

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deepgmap_core.cli import (attribute, bam_to_peaks, discover_motifs, make_training_windows, merge_bigwigs,
                               motif_extract, predict_bigwig, score_variants, train_model)

OLD = b"an earlier run's output\n"

# Per command: its arguments, with {NAME} for the inputs below and {out} for the output folder;
# the outputs an earlier run left there; and which argument is an output folder, if any.
COMMANDS = {
    "bam_to_peaks": (bam_to_peaks, ["--bam", "{bam}", "--control", "{control}", "--blacklist", "{blacklist}",
                                    "--min-peaks", "1", "--peaks", "{out}/p.narrowPeak", "--qc", "{out}/q.tsv"],
                     ["p.narrowPeak", "q.tsv"]),
    "make_training_windows": (make_training_windows, ["--genome", "{genome}", "--peaks", "{peaks}", "--blacklist",
                                                      "{blacklist}", "--valid-chroms", "chr22", "-o", "{out}/w.tsv"],
                              ["w.tsv"]),
    "train_model": (train_model, ["--genome", "{genome}", "--windows", "{windows}", "--motif-db", "{motifs}",
                                  "--width-scale", "0.05", "--epochs", "1", "--steps-per-epoch", "2",
                                  "--max-valid-windows", "100", "-o", "{out}/m.keras", "--metrics", "{out}/m.tsv"],
                    ["m.keras", "m.tsv"]),
    "predict_bigwig": (predict_bigwig, ["--model", "{model}", "--genome", "{genome}", "--regions", "{regions}",
                                        "--evaluate", "{windows}", "--max-eval-windows", "100", "--motif-db",
                                        "{motifs}", "--outdir", "{out}/tracks"],
                       ["tracks/CTCF.bw", "tracks/H3K4me3.bw"]),
    "merge_bigwigs": (merge_bigwigs, ["{bigwig}", "{bigwig2}", "-o", "{out}/merged.bw"], ["merged.bw"]),
    "motif_extract": (motif_extract, ["--model", "{model}", "--motif-db", "{motifs}", "--tomtom", "{out}/t.tsv",
                                      "-o", "{out}/k.meme"], ["k.meme", "t.tsv"]),
    "score_variants": (score_variants, ["--model", "{model}", "--genome", "{genome}", "--vcf", "{vcf}",
                                        "-o", "{out}/v.vcf"], ["v.vcf"]),
    "attribute": (attribute, ["--model", "{ctcf_model}", "--genome", "{genome}", "--regions", "{peaks}",
                              "-o", "{out}/a.h5", "--tracks", "{out}/tracks"],
                  ["a.h5", "tracks/CTCF.contributions.bw"]),
    "discover_motifs": (discover_motifs, ["-i", "{attributions}", "--motif-db", "{motifs}", "--tomtom",
                                          "{out}/t.tsv", "-o", "{out}/p.meme"], ["p.meme", "t.tsv"]),
}

INPUTS = {  # placeholder -> file of test-data
    "bam": "K562_H3K4me3.chr22_20M.bam", "control": "K562_H3K4me3.chr22_20M.bam", "blacklist": "blacklist.bed",
    "genome": "genome.fa.gz", "peaks": "CTCF.bed", "windows": "windows.tsv", "motifs": "JASPAR2024_CORE_clusters.meme",
    "model": "model.keras", "ctcf_model": "CTCF_chr20.keras", "regions": "regions.bed",
    "bigwig": "tracks_chr20_CTCF.bw", "bigwig2": "tracks_chr22_CTCF.bw", "vcf": "variants.vcf",
    "attributions": "CTCF_chr22_attributions.h5",
}

INPUT_FAULTS = ("missing", "folder", "empty", "garbage", "cut_short")
OUTPUT_FAULTS = ("missing_folder", "folder_mismatch", "read_only", "disk_full")


def input_cases():
    for command, (_, template, _) in COMMANDS.items():
        for name in dict.fromkeys(part[1:-1] for part in template if part[1:-1] in INPUTS):
            for fault in INPUT_FAULTS:
                yield pytest.param(command, name, fault, id=f"{command}-{name}-{fault}")


def suffix_of(filename):
    return "".join(Path(filename).suffixes[-2:] if filename.endswith(".gz") else Path(filename).suffixes[-1:])


def faulty_input(tmp_path, test_data, name, fault):
    """A path to `fault` standing in for the input `name`."""
    original = test_data / INPUTS[name]
    path = tmp_path / f"faulty_{name}{suffix_of(INPUTS[name])}"
    if fault == "folder":
        path.mkdir()
    elif fault == "empty":
        path.write_bytes(b"")
    elif fault == "garbage":
        path.write_bytes(b"hello\tworld\n" * 3)
    elif fault == "cut_short":
        data = original.read_bytes()
        path.write_bytes(data[:max(300, len(data) * 2 // 5)] if len(data) > 600 else data[:len(data) // 2])
    return path


def prepare(tmp_path, test_data, command, out, replaced=None):
    """The command's arguments and its earlier outputs (written into `out`)."""
    _, template, outputs = COMMANDS[command]
    for relative in outputs:
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_bytes(OLD)
    values = {name: str(test_data / filename) for name, filename in INPUTS.items()}
    values.update(replaced or {})
    return [part.format(out=out, **values) for part in template]


def snapshot(folder):
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
            for path in sorted(folder.rglob("*"))}


def check_failure(module, argv, out, capsys, names):
    """Exit code 1; the error is one line, the last, naming one of `names` (what went on before,
    e.g. a fault found after the work, may have printed progress); no traceback; nothing in `out`
    changed or added."""
    before = snapshot(out)
    code = module.main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1, f"exit {code}: {lines[-3:]}"
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1 and errors[0] == lines[-1] and "Traceback" not in "\n".join(lines), lines[-5:]
    assert any(name in errors[0] for name in names), errors[0]
    assert snapshot(out) == before  # no new file (a temporary one included), the old outputs unchanged


@pytest.mark.parametrize("command, name, fault", list(input_cases()))
def test_a_bad_input_is_one_line_naming_it_and_nothing_changes(command, name, fault, test_data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    path = faulty_input(tmp_path, test_data, name, fault)
    argv = prepare(tmp_path, test_data, command, out, {name: str(path)})
    check_failure(COMMANDS[command][0], argv, out, capsys, [path.name])


@contextlib.contextmanager
def small_file_system(tmp_path):
    """A 1 MB tmpfs at tmp_path/'fs', unmounted at the end."""
    mount = tmp_path / "fs"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not allowed here (needs root): the read-only and full-disk cases need one")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill_up(mount):
    """Fill the file system to its last byte."""
    fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)


def output_cases():
    for command, (_, template, _) in COMMANDS.items():
        for fault in OUTPUT_FAULTS:
            if fault == "missing_folder" and "--outdir" in template:
                continue  # an output folder is made when missing, as mkdir -p does
            yield pytest.param(command, fault, id=f"{command}-{fault}")


@pytest.mark.parametrize("command, fault", list(output_cases()))
def test_an_output_that_cannot_be_written_is_one_line_and_nothing_changes(command, fault, test_data, tmp_path,
                                                                          capsys):
    module, template, outputs = COMMANDS[command]
    if fault == "missing_folder":
        out = tmp_path / "out"
        out.mkdir()
        argv = prepare(tmp_path, test_data, command, out)
        missing = tmp_path / "missing"
        argv = [part.replace(str(out), str(missing)) for part in argv]
        check_failure(module, argv, out, capsys, ["missing"])
        assert not missing.exists()
        return
    if fault == "folder_mismatch":
        out = tmp_path / "out"
        out.mkdir()
        argv = prepare(tmp_path, test_data, command, out)
        target = out / Path(outputs[0]).parts[0]
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        if Path(outputs[0]).parent != Path("."):
            target.write_bytes(OLD)  # a file where the output folder goes
        else:
            target.mkdir()  # a folder where the output file goes
        check_failure(module, argv, out, capsys, [target.name])
        return
    with small_file_system(tmp_path) as mount:
        argv = prepare(tmp_path, test_data, command, mount)
        if fault == "read_only":
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        else:
            fill_up(mount)
        check_failure(module, argv, mount, capsys, [str(mount)])
