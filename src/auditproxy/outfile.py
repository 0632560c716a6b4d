"""Writing a command's output file (``export --har``, ``audit -o``, ``replay -o``).

``open_output(path, inputs)`` is a context manager giving a text stream:

- ``-`` is standard output;
- a regular file, or a path that does not exist yet, is written atomically: to a
  temporary file beside it, fsynced and renamed over the target only when the
  block completes (the target keeps its permission bits; a symlink to a regular
  file is followed, so the link stays a link);
- anything else (a FIFO, a character device such as ``/dev/stdout``, ``/dev/full``
  or a terminal, anything under ``/dev`` or ``/proc``) is written through in place,
  never replaced;
- a path that is one of the command's input files is refused before anything is
  written.

Every failure is an ``OutputError`` whose text names the path and the reason.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import TextIO

STDOUT = "-"


class OutputError(Exception):
    """The output file cannot be written; the message names it and says why."""


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _writes_through(path: str) -> bool:
    """True when ``path`` must be written in place rather than replaced."""
    if os.path.abspath(path).startswith(("/dev/", "/proc/")):
        return True
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return not stat.S_ISREG(mode)


def refuse_inputs(path: str, inputs: Iterable[str]) -> None:
    """Raise OutputError when ``path`` is one of ``inputs`` (the same file on disk)."""
    if path == STDOUT:
        return
    for source in inputs:
        if _same_file(path, source):
            raise OutputError(f"refusing to write {path}: it is the input file {source}")


@contextlib.contextmanager
def open_output(path: str, inputs: Iterable[str] = ()) -> Iterator[TextIO]:
    """A text stream onto ``path``; see the module docstring for what happens where."""
    refuse_inputs(path, inputs)
    if path == STDOUT:
        yield sys.stdout
        sys.stdout.flush()
        return
    if _writes_through(path):
        with _through(path) as fh:
            yield fh
        return
    with _atomic(os.path.realpath(path), path) as fh:
        yield fh


@contextlib.contextmanager
def _through(path: str) -> Iterator[TextIO]:
    try:
        fh = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        yield fh
        fh.flush()
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            fh.close()


@contextlib.contextmanager
def _atomic(target: str, shown: str) -> Iterator[TextIO]:
    folder = os.path.dirname(target) or "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise OutputError(f"cannot write {shown}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _mode_for(target: str) -> int:
    """The existing file's permission bits, or what a new file would get (umask)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
