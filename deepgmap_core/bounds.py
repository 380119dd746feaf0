"""The ranges of the numbers the commands take (probabilities, fractions, rates, counts), each
declared once: the command line's argparse types (cli/common.py) and the settings' check()
methods both test a value against the same Range."""

import math
from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class Range:
    low: float
    high: float = None          # None: no upper bound
    low_open: bool = False      # True: `low` itself is outside (upper bounds are always inside)
    integer: bool = False

    def problem(self, value):
        """Why `value` is outside the range ('must be ...'), or None."""
        if not self.integer and not math.isfinite(value):
            return "must be a finite number"
        below = value <= self.low if self.low_open else value < self.low
        if not (below or self.high is not None and value > self.high):
            return None
        if self.high is None:
            return f"must be {'>' if self.low_open else '>='} {self.low}"
        return f"must be within {'(' if self.low_open else '['}{self.low}, {self.high}]"

    def check(self, value, option):
        """InputError naming `option` when `value` is outside the range."""
        problem = self.problem(value)
        if problem:
            raise InputError(f"{option} {problem}, got {value}")


PROBABILITY = Range(0, 1)                       # a probability or a fraction, both ends allowed
POSITIVE_PROBABILITY = Range(0, 1, low_open=True)  # a q-value or precision cut-off: 0 would keep nothing
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)              # a rate, a scale, a width factor
COUNT = Range(0, integer=True)
POSITIVE_COUNT = Range(1, integer=True)
MAPQ = Range(0, 255, integer=True)              # SAM: 0-254, 255 for "not available"
SEED = Range(0, 2**32 - 1, integer=True)        # numpy's legacy seed (keras.utils.set_random_seed) takes 32 bits
