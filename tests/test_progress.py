"""The shared progress bar: drawn on a real terminal (a pty), silent on anything else."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import pytest

from auditproxy.progress import ProgressBar


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tty() -> Iterator[tuple[io.TextIOWrapper, int]]:
    """The writing end of a pseudo-terminal and the fd its output is read from."""
    reader, writer = os.openpty()
    stream = open(writer, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    yield stream, reader
    stream.close()
    os.close(reader)


def read(fd: int) -> str:
    return os.read(fd, 65536).decode()


def test_draws_on_a_terminal_and_clears(tty: tuple[io.TextIOWrapper, int]) -> None:
    """On a pty the bar shows the label, the filled fraction and the note; clear erases it."""
    stream, fd = tty
    clock = Clock()
    bar = ProgressBar(stream, 200, label="  traffic ", clock=clock)
    assert bar.active
    bar.update(50, "7 exchanges")
    assert read(fd) == "\r  traffic [#######-----------------------]  25%  7 exchanges"
    bar.update(60, "8 exchanges")  # within the interval: not redrawn
    clock.now = 0.5
    bar.update(100)  # a shorter line overwrites the longer one
    drawn = read(fd)
    assert drawn.startswith("\r  traffic [###############---------------]  50%")
    assert drawn.endswith(" " * 5)
    bar.clear()
    assert read(fd) == "\r" + " " * len(drawn.rstrip()[1:]) + "\r"


def test_reaching_the_total_is_always_drawn(tty: tuple[io.TextIOWrapper, int]) -> None:
    """The last update is drawn however soon it follows the one before."""
    stream, fd = tty
    bar = ProgressBar(stream, 10, clock=Clock())
    bar.update(1)
    read(fd)
    bar.update(10, "done")
    assert "100%  done" in read(fd)


def test_silent_when_not_a_terminal_or_disabled(tty: tuple[io.TextIOWrapper, int]) -> None:
    """A pipe or file gets nothing, and neither does a terminal with enabled=False."""
    out = io.StringIO()
    bar = ProgressBar(out, 10)
    assert not bar.active
    for i in range(11):
        bar.update(i, "x")
    bar.clear()
    assert out.getvalue() == ""
    stream, _fd = tty
    assert not ProgressBar(stream, 10, enabled=False).active
