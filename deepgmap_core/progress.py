"""The one place that writes messages and progress bars to stderr.

Progress bars are drawn only when stderr is a terminal, so logs and pipes stay clean.
"""

import sys
import time


def message(text):
    """Write one line of information to stderr."""
    print(text, file=sys.stderr, flush=True)


def warn(text):
    message(f"warning: {text}")


class ProgressBar:
    """A text progress bar on stderr: `with ProgressBar(total, "label") as bar: bar.update(n)`."""

    def __init__(self, total, label, unit=""):
        self.total = max(int(total), 1)
        self.label = label
        self.unit = unit
        self.done = 0
        self.enabled = sys.stderr.isatty()
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
