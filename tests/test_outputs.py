"""A command's outputs replace earlier ones together at the end of its run, or not at all: every
command runs in fileio.output_group (cli.common.run_tool), and the writers (atomic_output for
streams, atomic_paths for bigWigs and models) hand their finished files to it."""

import argparse
import os

import pytest

from deepgmap_core.cli.common import run_tool
from deepgmap_core.errors import InputError
from deepgmap_core.fileio import atomic_output, atomic_paths, output_group


def write_two_outputs(folder, fail_after):
    def action(args, argv):
        with atomic_output(str(folder / "table.tsv")) as stream:
            stream.write(b"new table\n")
        with atomic_paths([str(folder / "track.bw")]) as (temporary,):
            with open(temporary, "w") as handle:
                handle.write("new track\n")
        # finished files wait under their temporary names until the run ends
        assert (folder / "table.tsv").read_text() == "old table\n"
        if fail_after:
            raise fail_after
    return action


@pytest.mark.parametrize("fail_after", [None, InputError("a late failure"), BrokenPipeError()],
                         ids=["success", "late_failure", "stdout_reader_gone"])
def test_outputs_are_committed_together_at_the_end_or_not_at_all(tmp_path, capfd, fail_after):
    """A failure commits nothing; a closed stdout pipe (`| head`) is not a failure of ours: the
    finished files stand."""
    (tmp_path / "table.tsv").write_text("old table\n")
    (tmp_path / "track.bw").write_text("old track\n")
    code = run_tool("deepgmap-test", argparse.ArgumentParser(), write_two_outputs(tmp_path, fail_after), [])
    assert sorted(os.listdir(tmp_path)) == ["table.tsv", "track.bw"]  # no temporary file left
    contents = [(tmp_path / name).read_text() for name in ("table.tsv", "track.bw")]
    if isinstance(fail_after, InputError):
        assert code == 1 and capfd.readouterr().err == "deepgmap-test: error: a late failure\n"
        assert contents == ["old table\n", "old track\n"]
    else:
        assert code == 0 and contents == ["new table\n", "new track\n"]


def test_immediate_files_are_in_place_at_once_and_an_interrupt_commits_nothing(tmp_path):
    """A checkpoint must exist while its run goes on (immediate); Ctrl-C drops the rest."""
    with pytest.raises(KeyboardInterrupt), output_group():
        with atomic_paths([str(tmp_path / "m.checkpoint.keras")], immediate=True) as (temporary,):
            open(temporary, "w").close()
        assert (tmp_path / "m.checkpoint.keras").exists()
        with atomic_output(str(tmp_path / "metrics.tsv")) as stream:
            stream.write(b"x\n")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["m.checkpoint.keras"]
