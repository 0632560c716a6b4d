"""One progress bar for ``auditproxy demo`` and ``auditproxy audit``.

Drawn on one line of a terminal only: on a stream that is not a TTY (a pipe, a
file, a CI log) every call does nothing, so no carriage return reaches a log.
Redrawn at most ten times a second, and always when the count reaches the total.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

WIDTH = 30


class ProgressBar:
    """``label [#####-----]  42%  note`` on ``stream`` while it is a terminal."""

    def __init__(self, stream: TextIO, total: int, *, label: str = "", enabled: bool = True,
                 interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.stream = stream
        self.total = total
        self.label = label
        self.active = enabled and stream.isatty()
        self.interval = interval
        self._clock = clock
        self._last = float("-inf")
        self._drawn = 0  # characters on the line now

    def update(self, done: int, note: str = "") -> None:
        """Redraw for ``done`` of ``total`` (skipped when drawn less than ``interval`` ago)."""
        if not self.active:
            return
        now = self._clock()
        if done < self.total and now - self._last < self.interval:
            return
        self._last = now
        frac = min(done / self.total, 1.0) if self.total > 0 else 1.0
        filled = int(frac * WIDTH)
        line = f"{self.label}[{'#' * filled}{'-' * (WIDTH - filled)}] {frac:4.0%}  {note}".rstrip()
        self.stream.write("\r" + line.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(line)

    def clear(self) -> None:
        """Erase the bar (before printing a message, and when done)."""
        if self.active and self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0
