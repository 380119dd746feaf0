"""Tab-separated text parsed as bytes with numpy, never a Python object per line: lines are found
by their newlines, numbers summed from their digits, names compared as bytes a lane at a time.
The windows table reader and the peak file reader share these pieces."""

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

TAB, NEWLINE, ZERO = 9, 10, 48
LANE = 8  # gathers are a multiple of 8 bytes wide: a row's test results are then ORed 8 at a time
MAX_DIGITS = 18  # every whole number of up to 18 digits fits in an int64
PAD_BEFORE = 24  # zeros before a text: a number's gather (a lane width of MAX_DIGITS) never runs off it
_EXPONENTS = np.arange(PAD_BEFORE - 1, -1, -1)
_PLACE_VALUES = np.where(_EXPONENTS < MAX_DIGITS, 10 ** np.minimum(_EXPONENTS, MAX_DIGITS - 1), 0)


def unix_line_ends(text):
    """`text` (bytes) with CR LF and CR line ends made LF, as text mode reads them."""
    return text.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if b"\r" in text else text


def padded_lines(pieces, pad_after):
    """The bytes of the `pieces` of a text (whole lines, each ending in a newline, once joined),
    joined between PAD_BEFORE zeros and `pad_after` zeros (the widest gather past a line's start),
    and each line's start and end (the place of its newline) in them."""
    padded = np.concatenate([np.zeros(PAD_BEFORE, np.uint8), *(np.frombuffer(piece, np.uint8) for piece in pieces),
                             np.zeros(pad_after, np.uint8)])
    line_ends = np.flatnonzero(padded == NEWLINE)
    return padded, np.concatenate([[PAD_BEFORE], line_ends[:-1] + 1]), line_ends


def lane_width(width):
    return max(-(-width // LANE), 1) * LANE


def or_columns(matrix):
    """The OR of a matrix's columns: numpy's reductions along short rows cost ~20 ns a row, more
    than the rest of a row's parsing."""
    return functools.reduce(np.bitwise_or, matrix.T)


def whole_numbers(padded, cell_ends, lengths):
    """The numbers in the cells of `lengths` bytes ending at `cell_ends`, and whether each is
    made of 1 to MAX_DIGITS digits."""
    width = lane_width(int(np.clip(lengths, 0, MAX_DIGITS).max(initial=0)))
    digits = sliding_window_view(padded, width)[cell_ends - width] - np.uint8(ZERO)
    digits *= np.arange(width) >= width - lengths[:, None]  # the bytes before the cell count as 0
    good = (or_columns((digits > 9).view(np.uint64)) == 0) & (lengths >= 1) & (lengths <= MAX_DIGITS)
    return digits @ _PLACE_VALUES[-width:], good


def name_runs(padded, line_starts, name_lengths):
    """The distinct names (bytes, zero-padded) that begin the lines, and per run of lines with one
    name (sorted files have few runs) the index of its name and its length: names are compared
    as bytes a lane at a time, not decoded per line. The text must be padded with at least the
    longest name's lane width after it."""
    width = lane_width(int(name_lengths.max(initial=0)))
    names = sliding_window_view(padded, width)[line_starts]
    names *= np.arange(width) < name_lengths[:, None]
    lanes = names.view(np.uint64)
    runs = np.concatenate([[0], np.flatnonzero(or_columns(lanes[1:] != lanes[:-1])) + 1])
    distinct, run_names = np.unique(names[runs].view(f"V{width}").ravel(), return_inverse=True)
    return distinct, run_names, np.diff(np.append(runs, len(line_starts)))


def decoded(name):
    """A name from name_runs as text."""
    return name.tobytes().rstrip(b"\0").decode("utf-8", "replace")
