"""Exchanges over time: counts per time bucket, bounded however long the span.

``Timeline.add(started, noncompliant)`` counts one exchange in the bucket of its
start time (epoch seconds). Buckets start 10 ms wide; when more than
``max_buckets`` are in use they widen along ``WIDTHS`` (each a whole multiple of
the one before, so merging is exact), so a proxy running for months holds a few
hundred counters. ``series(max_points)`` gives the counts merged to the
narrowest width that needs at most ``max_points`` buckets over the span.
Bucket keys are whole hundredths of a second, so no float rounding moves an
exchange into the wrong bucket.
"""

from __future__ import annotations

from typing import Any

# Seconds; each is a whole multiple of the one before; past the last, widths double.
WIDTHS = (0.01, 0.02, 0.1, 0.2, 1.0, 2.0, 10.0, 20.0, 60.0, 120.0, 600.0, 1200.0, 3600.0,
          7200.0, 21600.0, 86400.0)  # fmt: skip
_TICKS = tuple(round(w * 100) for w in WIDTHS)


def _ticks(level: int) -> int:
    if level < len(_TICKS):
        return _TICKS[level]
    return _TICKS[-1] << (level - len(_TICKS) + 1)


def _merge(buckets: dict[int, list[int]], factor: int) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for key, (n, bad) in buckets.items():
        b = out.setdefault(key // factor, [0, 0])
        b[0] += n
        b[1] += bad
    return out


class Timeline:
    """Exchanges and non-compliant exchanges per time bucket (bounded)."""

    __slots__ = ("_buckets", "_level", "_width", "first", "last", "max_buckets")

    def __init__(self, max_buckets: int = 512) -> None:
        self.max_buckets = max_buckets
        self._level = 0
        self._width = _TICKS[0]  # hundredths of a second
        self._buckets: dict[int, list[int]] = {}
        self.first = float("inf")
        self.last = float("-inf")

    def add(self, started: float, noncompliant: bool) -> None:
        """Count one exchange that started at ``started`` (epoch seconds; <= 0: unknown)."""
        self.add_many(started, 1, 1 if noncompliant else 0)

    def add_many(self, started: float, n: int, noncompliant: int) -> None:
        """Count ``n`` exchanges (``noncompliant`` of them) started at ``started``."""
        if started <= 0 or n <= 0:
            return
        ticks = int(started * 100)
        b = self._buckets.get(ticks // self._width)
        if b is None:
            if len(self._buckets) >= self.max_buckets:
                self._widen()
                b = self._buckets.get(ticks // self._width)
            if b is None:
                b = self._buckets[ticks // self._width] = [0, 0]
        b[0] += n
        b[1] += noncompliant
        if started < self.first:
            self.first = started
        if started > self.last:
            self.last = started

    def _widen(self) -> None:
        while len(self._buckets) >= self.max_buckets:
            wider = _ticks(self._level + 1)
            self._buckets = _merge(self._buckets, wider // self._width)
            self._level += 1
            self._width = wider

    def series(self, max_points: int = 120) -> dict[str, Any]:
        """JSON-ready: ``first``/``last`` start times, ``bucket_seconds`` and ``points``
        (``[bucket start, exchanges, non-compliant]``, oldest first, empty buckets left out)."""
        if not self._buckets:
            return {"first": None, "last": None, "bucket_seconds": None, "points": []}
        level, width, buckets = self._level, self._width, self._buckets
        lo, hi = int(self.first * 100), int(self.last * 100)
        while hi // width - lo // width + 1 > max_points:
            wider = _ticks(level + 1)
            buckets = _merge(buckets, wider // width)
            level, width = level + 1, wider
        points = [[k * width / 100, n, bad] for k, (n, bad) in sorted(buckets.items())]
        return {"first": self.first, "last": self.last, "bucket_seconds": width / 100,
                "points": points}  # fmt: skip

    def state(self) -> dict[str, Any]:
        """The counts as JSON-ready data (``merge`` takes them back)."""
        width = self._width / 100
        points = [[k * width, n, bad] for k, (n, bad) in self._buckets.items()]
        return {"first": self.first if self._buckets else None,
                "last": self.last if self._buckets else None, "points": points}  # fmt: skip

    def merge(self, state: dict[str, Any]) -> None:
        """Add another timeline's ``state()``: each of its buckets counts at its start,
        and the first and last start times are kept exactly."""
        for start, n, bad in state.get("points", []):
            self.add_many(float(start), int(n), int(bad))
        for key in ("first", "last"):
            value = state.get(key)
            if isinstance(value, int | float) and value > 0:
                self.first, self.last = min(self.first, value), max(self.last, value)
