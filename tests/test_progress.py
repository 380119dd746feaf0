import os
import pty
import subprocess
import sys

SCRIPT = """
from deepgmap_core.progress import ProgressBar
with ProgressBar(100, "epoch 1/3", "samples") as bar:
    for _ in range(4):
        bar.update(25)
"""


def run_with_stderr(stderr):
    return subprocess.run([sys.executable, "-c", SCRIPT], stderr=stderr, check=True)


def test_progress_bar_draws_on_a_terminal_with_rate_and_eta():
    controller, terminal = pty.openpty()
    run_with_stderr(terminal)
    os.close(terminal)
    chunks = []
    while True:  # read everything the child wrote; EIO once the terminal side is closed
        try:
            chunk = os.read(controller, 10_000)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    drawn = b"".join(chunks).decode()
    assert "epoch 1/3 [" in drawn and "100.0%" in drawn and "samples/s ETA 0:00" in drawn


def test_progress_bar_is_silent_when_stderr_is_not_a_terminal():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    assert result.stderr == ""
