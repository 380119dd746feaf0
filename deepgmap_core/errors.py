"""Errors that the command-line tools report as one line, without a traceback."""


class InputError(Exception):
    """A user-supplied file or parameter is unusable; the message names it."""
