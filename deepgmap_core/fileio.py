"""Opening inputs (plain or gzip) and writing outputs atomically.

Outputs go to a temporary name beside the target and are renamed only when complete,
so an interrupted run never leaves a file that looks whole. A link is kept (its target is the
file written); stdout ('-') and special files (devices, FIFOs, sockets) are written through.
"""

import contextlib
import errno
import fcntl
import gzip
import io
import os
import re
import resource
import shutil
import stat
import sys
import tempfile
import zlib

import pysam

from .errors import InputError

GZIP_MAGIC = b"\x1f\x8b"


def provenance_lines(tool, command_line, **facts):
    """The `##key=value` lines every text output starts with: the suite's version, the tool, its
    command line, then `facts` in order."""
    from . import __version__

    return [f"##deepgmap_version={__version__}", f"##tool={tool}", f"##command={command_line}",
            *(f"##{key}={value}" for key, value in facts.items())]


def check_readable(path, what="file"):
    """Raise InputError unless `path` is an existing, readable regular file."""
    if not os.path.exists(path):
        raise InputError(f"{path}: {what} not found")
    if os.path.isdir(path):
        raise InputError(f"{path}: {what} is a directory")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: {what} is not readable")


class _CheckedGzipFile(gzip.GzipFile):
    """A gzip stream whose truncation or corruption is an InputError naming the file (gzip
    raises a bare EOFError or zlib.error halfway through reading)."""

    def __init__(self, path, what, raw):
        super().__init__(fileobj=raw)
        self.source = f"{path}: {what}"

    def _checked(self, read, *args):
        try:
            return read(*args)
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise InputError(f"{self.source} is truncated or not valid gzip ({error})") from None

    def read(self, size=-1):
        return self._checked(super().read, size)

    def read1(self, size=-1):
        return self._checked(super().read1, size)

    def readinto(self, buffer):
        return self._checked(super().readinto, buffer)

    def peek(self, n):
        return self._checked(super().peek, n)


def index_is_current(index, path):
    """An index file beside `path` that exists and is not older than it: an index made before the
    file was rewritten points at the wrong bytes, so the readers pass it over and build a fresh one."""
    return os.path.exists(index) and os.path.getmtime(index) >= os.path.getmtime(path)


UTF8_BOM = b"\xef\xbb\xbf"
# The starts of files no reader here takes, and what to do instead: other compressions (their magic
# numbers; bzip2's with its first block's or end-of-stream mark) and UTF-16 or UTF-32 text.
_FOREIGN_STARTS = [
    (rb"BZh[1-9](1AY&SY|\x17rE8P\x90)", "is bzip2-compressed: decompress it (bunzip2) or compress it with gzip"),
    (rb"\xfd7zXZ\x00", "is xz-compressed: decompress it (unxz) or compress it with gzip"),
    (rb"\x28\xb5\x2f\xfd", "is zstd-compressed: decompress it (unzstd) or compress it with gzip"),
    (rb"PK\x03\x04", "is a zip archive: unzip it, or compress the file in it with gzip"),
    (rb"\xff\xfe|\xfe\xff", "is UTF-16 (or UTF-32) text: convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)"),
]


def _check_start(stream, path, what):
    """InputError when the stream's first bytes (peeked, not read) are a _FOREIGN_STARTS: read as
    text, such a file is garbage lines or a chromosome no genome has, far from the cause."""
    head = stream.peek(10)[:10]
    for start, advice in _FOREIGN_STARTS:
        if re.match(start, head):
            raise InputError(f"{path}: {what} {advice}")


def open_binary(path, what="file"):
    """The bytes of a plain or gzip-compressed file (detected by content, not name), decompressed,
    a UTF-8 byte-order mark skipped (some editors write one; it would make the first name another);
    `skipped_bom` on the stream says whether there was one. Other compressions and UTF-16 text
    are InputErrors saying what to do."""
    check_readable(path, what)
    raw = open(path, "rb")
    try:
        _check_start(raw, path, what)   # peeked, not read: a pipe (<(...)) is opened only once
        stream = raw
        if raw.peek(2)[:2] == GZIP_MAGIC:
            stream = _CheckedGzipFile(path, what, raw)
            stream.myfileobj = raw   # as gzip.open does, so closing the stream closes the file
            _check_start(stream, path, what)
        stream.skipped_bom = stream.peek(3)[:3] == UTF8_BOM
        if stream.skipped_bom:
            stream.read(3)
    except BaseException:
        raw.close()
        raise
    return stream


def open_text(path, what="file"):
    """open_binary's stream as UTF-8 text."""
    return io.TextIOWrapper(open_binary(path, what), encoding="utf-8", errors="replace")


def check_text_input(path, what="file"):
    """open_binary's checks, for a text file a library opens itself (memelite reads a MEME file by
    name): a bzip2 file is named as such, not 'not readable'."""
    open_binary(path, what).close()


# Outputs of the run in progress waiting to be renamed into place together (see output_group).
_PENDING_GROUPS = []


@contextlib.contextmanager
def output_group():
    """Outputs finished inside the block (atomic_output, atomic_paths) are renamed into place
    together when it ends without an exception, and all removed otherwise: a run that fails or
    is interrupted late replaces none of an earlier run's outputs. Every command runs in one."""
    pending = []
    _PENDING_GROUPS.append(pending)
    try:
        yield
    except BrokenPipeError:  # the reader of stdout went away (`| head`): the finished files stand
        _replace_all(pending)
        raise
    except BaseException:
        for tmp, _ in pending:
            if tmp is not None:  # None: a file to remove on success (remove_when_committed), kept
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        raise
    finally:
        _PENDING_GROUPS.remove(pending)
    _replace_all(pending)


def _replace_all(pending):
    for tmp, path in pending:
        if tmp is not None:
            os.replace(tmp, path)
    for tmp, path in pending:
        if tmp is None:
            os.unlink(path)


def remove_when_committed(*paths):
    """Remove files a run keeps until its outputs are in place (a checkpoint): at once outside an
    output_group; inside one, after its outputs are renamed into place, and never when the run
    fails or is interrupted (they let it resume)."""
    for path in paths:
        if _PENDING_GROUPS:
            _PENDING_GROUPS[-1].append((None, path))
        else:
            os.unlink(path)


def _commit(tmp, path, immediate):
    make_readable(tmp)
    if _PENDING_GROUPS and not immediate:
        _PENDING_GROUPS[-1].append((tmp, path))
    else:
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_output(path):
    """Yield a binary stream for `path` ('-' = stdout); BGZF (bgzip: gzip that tabix and htslib can
    index) when the name ends in .gz.

    A regular file (or a link's regular target) gets the data under a hidden temporary name in its
    folder, renamed over it only after the block finished without an exception (inside an
    output_group, when the group ends). '-' and a path that is not a regular file (a device, FIFO,
    socket, /dev/stdout) are written through: they cannot be replaced, and a reader waits on them.
    """
    if path == "-" or is_special_output(path):
        with _written_through(path) as raw:
            if path.endswith(".gz"):
                with pysam.BGZFile(f"/dev/fd/{raw.fileno()}", "wb") as stream:
                    yield stream
            else:
                yield raw
        return
    with atomic_paths([path]) as (tmp,):
        if path.endswith(".gz"):
            with pysam.BGZFile(tmp, "wb") as stream:
                yield stream
        else:
            with open(tmp, "wb") as raw:
                yield raw
        synced = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(synced)
        finally:
            os.close(synced)


# A descriptor of this process named as a path: written to as the descriptor (reopening a socket's fails).
_DESCRIPTOR_PATH = re.compile(r"/dev/std(?P<std>out|err)|/dev/fd/(?P<fd>\d+)|/proc/self/fd/(?P<proc_fd>\d+)")


@contextlib.contextmanager
def _written_through(path):
    """A binary stream straight into stdout ('-') or the special file `path`, flushed at the end."""
    if path == "-":
        yield _stdout_stream()
        sys.stdout.buffer.flush()
        return
    named = _DESCRIPTOR_PATH.fullmatch(path)
    if named:
        descriptor = os.dup({"out": 1, "err": 2}.get(named["std"]) or int(named["fd"] or named["proc_fd"]))
    else:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND)  # appended: a file behind /proc is not truncated
    with open(descriptor, "wb") as stream:
        yield stream


def _stdout_stream():
    if sys.stdout is None:
        raise InputError("-: standard output is closed (give a file name to -o)")
    return sys.stdout.buffer


def is_special_output(path):
    """Whether `path` is, or links to, something that is not a regular file or a folder and so is
    written through rather than replaced (a device, FIFO, socket, a descriptor under /proc or /dev)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing, or a link to nothing: a new regular file
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) or _names_a_descriptor(os.path.abspath(path))


def _names_a_descriptor(path):
    """Whether `path` or a link on the way to its file is a descriptor (/dev/stdout, /proc/self/fd/1: the
    file behind it, even a regular one, is another process's open file, not one to rename over)."""
    for _ in range(40):  # the kernel's own limit of links followed
        if _DESCRIPTOR_PATH.fullmatch(path) or path.startswith("/proc/"):
            return True
        if not os.path.islink(path):
            return False
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    return False


def output_target(path):
    """The regular file `path` names: a link's target (renaming over the link would replace the link)."""
    return os.path.realpath(path) if os.path.islink(path) else path


def output_folder(path):
    """The folder `path` is written to; InputError if it does not exist."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{path}: output folder {folder} does not exist")
    return folder


def check_outputs(*paths, seekable=(), inputs=()):
    """Every output path of a run, checked before any work (so a long run does not fail at its
    end, and no input is overwritten): its folder exists and is writable, the path is not a folder,
    no two outputs and no output and input (`inputs`) are one file (device and inode, so links and
    other spellings count). `seekable`: outputs a library writes by name and seeks in (bigWig, HDF5,
    Keras), refused where they would be written through ('-', a FIFO, a device). '-' is stdout; None
    (not asked for) passes."""
    written = {}  # identity -> output
    for path in [*paths, *seekable]:
        if path is None:
            continue
        if (path == "-" or is_special_output(path)) and path in seekable:
            where = "standard output" if path == "-" else "a special file (device, FIFO or socket)"
            raise InputError(f"{path}: is {where}: this output is written only to a regular file "
                             f"(its format cannot be streamed)")
        if path == "-":
            _stdout_stream()
            identity = "-"
        elif is_special_output(path):  # /dev/null may take several outputs
            continue
        else:
            folder = output_folder(output_target(path))
            if os.path.isdir(path):
                raise InputError(f"{path}: is a folder, not a file to write")
            if not os.access(folder, os.W_OK):
                raise InputError(f"{path}: output folder {folder} is not writable")
            identity = _file_identity(path)
        if identity in written:
            raise InputError(f"{written[identity]} and {path}: two outputs on one file (give each its own)")
        written[identity] = path
    for path in inputs:
        if path is not None and _file_identity(path) in written:
            raise InputError(f"{written[_file_identity(path)]}: the output is the input {path} (the same file): "
                             f"write the output elsewhere")


def _file_identity(path):
    """Device and inode of an existing file, else its resolved path: every spelling of one file gives one value."""
    try:
        found = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return found.st_dev, found.st_ino


def _lock_or_fail(fd, text):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise InputError(text) from None


@contextlib.contextmanager
def folder_lock(folder, what):
    """Hold an exclusive lock on an output folder for a run (flock on the folder itself: nothing is
    written, and the lock goes with the process however it ends); InputError when another run
    holds it, so two runs never mix their files in one folder."""
    os.makedirs(folder, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        _lock_or_fail(fd, f"{folder}: another {what} run is writing to this folder")
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def output_lock(path, what):
    """Hold an exclusive lock on one output, and the files a run keeps beside it, for a run: flock
    on a hidden lock file beside it (the lock goes with the process however it ends; the file is
    removed when the run ends); InputError when another run holds it."""
    lock = os.path.join(output_folder(path), f".{os.path.basename(path)}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _lock_or_fail(fd, f"{path}: another {what} run is writing this output")
        try:
            yield
        finally:
            os.unlink(lock)
    finally:
        os.close(fd)


def check_output_folders(*folders):
    """Output folders (created when missing), checked before any work: not a file, writable
    where they exist (pyBigWig crashes the process on a file it cannot open). None passes."""
    for folder in folders:
        if folder is None or not os.path.exists(folder):
            continue
        if not os.path.isdir(folder):
            raise InputError(f"{folder}: is a file, not an output folder")
        if not os.access(folder, os.W_OK):
            raise InputError(f"{folder}: output folder is not writable")


def class_file_stems(class_names):
    """A file name stem per class (characters other than letters, digits and _.+- become _);
    InputError when two classes would share one."""
    stems, named = [re.sub(r"[^A-Za-z0-9_.+-]", "_", name) for name in class_names], {}
    for name, stem in zip(class_names, stems):
        if stem in named:
            raise InputError(f"classes {named[stem]!r} and {name!r} would both be written as {stem}: "
                             f"rename one (make-training-windows --names)")
        named[stem] = name
    return stems


def make_readable(path):
    """Give a temporary file (created 0600) the permissions a new file normally gets (0666 - umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


@contextlib.contextmanager
def atomic_paths(paths, suffix=".part", immediate=False):
    """Yield temporary paths (hidden, beside each target, ending in `suffix`) for writers that
    need a file name; all are renamed to `paths` when the block succeeds (inside an
    output_group, when the group ends, unless `immediate`), all removed when it fails."""
    special = [path for path in paths if is_special_output(path)]
    if special:  # refused before any work by check_outputs(seekable=...); this is the last guard
        raise InputError(f"{special[0]}: is not a regular file: this output is written only to a regular file")
    targets, temporary = [output_target(path) for path in paths], []
    try:
        for target in targets:  # unique names: two runs on one folder never write into each other's file
            fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=suffix,
                                       dir=output_folder(target))
            os.close(fd)
            temporary.append(tmp)
        yield temporary
    except BaseException as error:
        for tmp in temporary:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(error, OSError):
            _name_output(error, dict(zip(temporary, paths)))
        raise
    for tmp, target in zip(temporary, targets):
        _commit(tmp, target, immediate)


_WRITE_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS)


def _name_output(error, outputs):
    """Make a writer's error name the output (a temporary name means nothing to the user; a full
    disk's error names no file at all)."""
    if error.filename in outputs:
        error.filename = outputs[error.filename]
    elif error.filename is None and error.errno in _WRITE_FAILURES and outputs:
        error.filename = next(iter(outputs.values()))
    limit = file_size_limit()
    if error.errno == errno.EFBIG and limit is not None:  # "File too large" alone hides that it is a setting
        error.strerror = f"{error.strerror}: the file-size limit (ulimit -f) is {limit:,} bytes"


def file_size_limit():
    """The process's limit on the size of a file it writes (ulimit -f), in bytes; None: unlimited."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if limit == resource.RLIM_INFINITY else limit


def scratch_failure(error, folder):
    """Why a write to the scratch folder `folder` failed, when the folder or the process is at fault
    (a full disk, a quota, the file-size limit of `ulimit -f`) and not the input being unpacked or
    indexed there; None for other errors."""
    if not isinstance(error, OSError) or error.errno not in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):
        return None
    limit = file_size_limit()
    if error.errno == errno.EFBIG and limit is not None:
        return f"writing to the temporary folder {folder} passed the file-size limit (ulimit -f) of {limit:,} bytes"
    return f"cannot write to the temporary folder {folder} ({error.strerror}): set TMPDIR to a folder with room"


class PrivateFolder:
    """Base of readers that may need scratch files (an index they build, a decompressed copy):
    a temporary folder made on first use, removed by close(); use as a context manager."""

    _tmpdir = None

    def private_path(self, name):
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="deepgmap-")
        return os.path.join(self._tmpdir, name)

    def _close_handles(self):
        """Close what the subclass opened."""

    def close(self):
        self._close_handles()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
