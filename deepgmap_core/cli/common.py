"""Parser pieces and the error handling shared by every command-line tool."""

import argparse
import os
import shlex
import signal
import sys
import threading
from dataclasses import fields

from .. import __version__
from ..bounds import COUNT, NON_NEGATIVE, POSITIVE, POSITIVE_COUNT, POSITIVE_PROBABILITY, PROBABILITY, SEED
from ..errors import InputError
from ..fileio import output_group
from ..progress import failure, message, set_quiet

EXIT_INPUT_ERROR = 1


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults (but not None, which an option's help explains) and keeps the description's
    own line breaks."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """A usage error is one line (the usage is in --help), exit code 2 as argparse's."""

    def error(self, text):
        failure(f"{self.prog}: error: {text} (see --help)")
        self.exit(2)


def make_parser(prog, description, epilog=None):
    parser = ArgumentParser(prog=prog, description=description, epilog=epilog, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument("-v", "--verbose", action="store_true",
                      help="also the backend's own start-up messages (where a GPU node's CUDA errors appear) and "
                           "the device it found")
    talk.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    return parser


# Set by run_tool from -v: import_keras then lets the backend's messages through.
_verbose = False


def set_backend_environment(onednn):
    """TensorFlow's settings, read once when it is first imported in a process (so a process that
    runs several tools, as the test suite does, keeps the first): its log level (quiet unless -v)
    and oneDNN, on for prediction (faster here), off for training (30-45% slower on this kind of
    CPU). What the caller's environment sets already is kept."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if _verbose else "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1" if onednn else "0")


def import_keras(onednn, threads=None):
    """Import Keras with TensorFlow's start-up notices kept off stderr (they are printed from C++
    before its log settings apply), in the environment set_backend_environment(onednn) sets.
    `threads`: the most CPU threads TensorFlow's own pools may use (a scheduler's slots; by
    default it takes every core)."""
    set_backend_environment(onednn)
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            if not _verbose:
                os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401
    except ModuleNotFoundError as error:
        raise InputError(f"{error.name} is not installed: this tool needs Keras 3 with a backend "
                         f"(pip install 'deepgmap-suite[cpu]', or tensorflow, jax or torch)") from None
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    if threads and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already runs in this process (tools called in-process): its pools stay
            pass
    if _verbose:
        from ..backend import accelerator

        message(f"Keras {keras.__version__}, backend {keras.backend.backend()}, computing on {accelerator()}")


def number_type(bounds):
    """An argparse type: a number (a whole one for an integer Range) within `bounds`, which it
    keeps as .bounds (the Galaxy wrappers' min and max are checked against it)."""

    def parse(text):
        try:
            value = int(text) if bounds.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {'whole ' if bounds.integer else ''}number: {text!r}") from None
        problem = bounds.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, got {text!r}")
        return value

    parse.bounds = bounds
    return parse


def auto_or(number):
    """An argparse type: 'auto' or what the number type `number` takes."""

    def parse(text):
        return text if text == "auto" else number(text)

    parse.bounds = number.bounds
    return parse


non_negative_float = number_type(NON_NEGATIVE)
positive_float = number_type(POSITIVE)
probability = number_type(PROBABILITY)
positive_probability = number_type(POSITIVE_PROBABILITY)
non_negative_int = number_type(COUNT)
positive_int = number_type(POSITIVE_COUNT)


def available_cores():
    """Cores this process may run on (all of the machine's where the OS cannot say, e.g. macOS)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_count(text):
    """A number of threads >= 1, or 'max' (the available cores) or 'max/2', as deepTools takes them."""
    if text in ("max", "max/2"):
        return max(1, available_cores() // (1 if text == "max" else 2))
    return positive_int(text)


def add_model_argument(parser):
    parser.add_argument("--model", required=True, metavar="MODEL", help="model file from deepgmap-train-model (.keras)")


def add_genome_argument(parser, text):
    parser.add_argument("--genome", required=True, metavar="FASTA", help=f"{text} (plain, gzip or bgzip FASTA)")


def add_batch_size_argument(parser, text="windows per model call"):
    parser.add_argument("--batch-size", type=positive_int, help=f"{text} (more: faster on a GPU, more memory)")


def add_rc_average_argument(parser):
    parser.add_argument("--rc-average", action="store_true",
                        help="average each window's prediction with its reverse complement's (always on for models "
                             "trained on both strands: the default recipe's strand augmentation)")


def add_seed_argument(parser):
    parser.add_argument("--seed", type=number_type(SEED), default=0,
                        help="seed of every random choice; the same seed and inputs give the same output")


def add_threads_argument(parser, text="number of threads", most=4):
    """-p/--threads, by default the available cores (at most `most`; None: all of them)."""
    cores = available_cores()
    parser.add_argument("-p", "--threads", type=thread_count, default=cores if most is None else min(cores, most),
                        help=f"{text}: a number, 'max' or 'max/2' (default: the available cores"
                             f"{'' if most is None else f', at most {most}'})")


def add_backend_threads_argument(parser, also=""):
    """-p/--threads of the Keras tools: it bounds the backend's own thread pools too (import_keras),
    so that a job given N slots by a scheduler uses N cores."""
    add_threads_argument(parser, "CPU threads of the model's computations" + (f" and of {also}" if also else ""),
                         most=None)


def defaults_from(parser, settings_class, leave=()):
    """Each option whose destination is a field of `settings_class` takes the field's default
    (declared once, there; --help shows it), except the fields in `leave`, whose options mean
    something else (e.g. "the model's" where the field holds a number)."""
    parser.set_defaults(**{f.name: f.default for f in fields(settings_class) if f.name not in leave})


def settings_from(settings_class, args, **values):
    """A settings dataclass built by keyword: each field from the parsed argument of its name
    (whose default is the field's: defaults_from), unless given in `values`."""
    parsed = {f.name: getattr(args, f.name) for f in fields(settings_class) if hasattr(args, f.name)}
    return settings_class(**{**parsed, **values})


def chromosome_list(text):
    """Chromosome names given as 'chr8,chr9' or as separate words."""
    return [name for name in text.split(",") if name]


def flatten(lists):
    return [item for sub in lists or [] for item in sub]


def command_line(prog, argv):
    return shlex.join([prog] + list(sys.argv[1:] if argv is None else argv))


class Signalled(KeyboardInterrupt):
    """A signal that ends a run (SIGTERM, SIGHUP): raised like Ctrl-C's KeyboardInterrupt, so the same
    clean-up runs (temporary files removed, child processes killed, earlier outputs kept)."""

    def __init__(self, number):
        super().__init__(number)
        self.number = number


def _end_runs_on_signals():
    """From now on SIGTERM (how Galaxy, Slurm and Kubernetes cancel a job) and SIGHUP raise Signalled
    in this process; returns the function that restores the handlers before. A signal ignored before
    (nohup) stays ignored; a second signal during the clean-up is ignored."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        return lambda: None
    runner, raised = os.getpid(), []

    def end_run(number, frame):
        if os.getpid() != runner:  # a forked worker (ProcessPoolExecutor): ends as it would have
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
        elif not raised:
            raised.append(number)
            raise Signalled(number)

    previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGHUP)}
    for number, handler in previous.items():
        if handler == signal.SIG_DFL:
            signal.signal(number, end_run)

    def restore():
        for number, handler in previous.items():
            signal.signal(number, handler)
    return restore


def _occupy_closed_descriptors():
    """Open /dev/null on stdin, stdout or stderr where the caller closed them (`2>&-`): else the next
    file opened would take that number and a library's C code would write its messages into it."""
    for descriptor in (0, 1, 2):
        try:
            os.fstat(descriptor)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != descriptor:
                os.dup2(null, descriptor)
                os.close(null)


def run_tool(prog, parser, action, argv=None):
    """Parse `argv`, run `action(args, argv)` and turn expected failures into one line and an
    exit code; the action may return its own exit code. SIGINT, SIGTERM and SIGHUP end a run the
    same way: one line, temporary files and child processes gone, exit code 128 + the signal's."""
    global _verbose
    _occupy_closed_descriptors()
    args = parser.parse_args(argv)
    _verbose = getattr(args, "verbose", False)
    set_quiet(getattr(args, "quiet", False))
    restore_signals = _end_runs_on_signals()
    try:
        with output_group():  # a run's outputs replace earlier ones together, at its end, or not at all
            code = action(args, argv)
    except InputError as error:
        failure(f"{prog}: error: {error}")
        return EXIT_INPUT_ERROR
    except BrokenPipeError:
        # The reader of our stdout went away (e.g. `| head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        failure(f"{prog}: error: {where}{error.strerror or error}")
        return EXIT_INPUT_ERROR
    except Signalled as stop:
        failure(f"{prog}: terminated ({signal.Signals(stop.number).name})")
        return 128 + stop.number
    except KeyboardInterrupt:
        failure(f"{prog}: interrupted")
        return 130
    finally:
        restore_signals()
    return code or 0
