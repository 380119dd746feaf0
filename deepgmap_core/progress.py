"""The one place that writes messages and progress bars to stderr.

Progress bars are drawn only when stderr is a terminal, so logs and pipes stay clean.
Quiet (a command's -q) keeps only warnings and errors.
"""

import sys
import time

_quiet = False


def set_quiet(quiet):
    global _quiet
    _quiet = bool(quiet)


def message(text, essential=False):
    """Write one line of information to stderr (unless quiet; `essential` lines always)."""
    if (essential or not _quiet) and sys.stderr is not None:  # None: stderr closed, the work goes on without it
        print(text, file=sys.stderr, flush=True)


def failure(text):
    """Write the line that ends a failed run: to stderr, or to stdout where stderr is closed (a run
    must not fail without a word; what it wrote to stdout is no result then anyway)."""
    stream = sys.stderr if sys.stderr is not None else sys.stdout
    if stream is not None:
        print(text, file=stream, flush=True)


def warn(text):
    message(f"warning: {text}", essential=True)


class ProgressBar:
    """A text progress bar on stderr: `with ProgressBar(total, "label") as bar: bar.update(n)`."""

    def __init__(self, total, label, unit=""):
        self.total = max(int(total), 1)
        self.label = label
        self.unit = unit
        self.done = 0
        self.enabled = sys.stderr is not None and sys.stderr.isatty() and not _quiet
        self._start = time.monotonic()
        self._last_draw = 0.0

    def __enter__(self):
        return self

    def update(self, amount):
        self.done += amount
        now = time.monotonic()
        if self.enabled and (now - self._last_draw > 0.2 or self.done >= self.total):
            self._last_draw = now
            self._draw(now)

    def _draw(self, now):
        fraction = min(self.done / self.total, 1.0)
        filled = int(30 * fraction)
        rate = self.done / max(now - self._start, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else 0
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] "
                         f"{100 * fraction:5.1f}% {rate:,.1f} {self.unit}/s ETA {int(left) // 60}:{int(left) % 60:02d}")
        sys.stderr.flush()

    def __exit__(self, *exc_info):
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
