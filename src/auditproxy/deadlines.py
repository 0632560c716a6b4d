"""Upstream deadlines: one coarse sweeper for every wait in flight, and the
``AttemptWatch`` that holds the deadlines of one upstream attempt.

An attempt's deadlines: the response head within ``response_headers`` of the
request being sent in full; no pause in the body longer than ``idle``; and an
end (``end_at``) that is the earliest of the exchange's ``total``, the retry
``deadline`` and the attempt's ``per_try_timeout``. Each attempt gets a fresh
watch, so a timeout of one attempt never leaks into the next.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

from auditproxy.settings import Timeouts
from auditproxy.wire import UpstreamError, UpstreamResponse

T = TypeVar("T")
_perf = time.perf_counter
_NEVER = float("inf")


# What an attempt is waiting for from the upstream (checked by the sweeper).
NOTHING, HEAD, BODY = 0, 1, 2


class AttemptWatch:
    """The deadlines of one upstream attempt. ``check`` runs about every 100 ms
    (``ctx.deadlines``) and cancels the waiting task once one has passed."""

    __slots__ = ("end_at", "end_why", "expired", "head_at", "idle", "progress",
                 "response", "seen", "task", "timeouts", "waiting")  # fmt: skip

    def __init__(self, timeouts: Timeouts, end_at: float, end_why: tuple[str, float]) -> None:
        self.timeouts = timeouts
        self.idle = timeouts.idle
        self.task = asyncio.current_task()
        self.end_at = end_at  # the earliest of total, retry deadline and per-try timeout
        self.end_why = end_why  # (what passed, its limit): the text is made only on expiry
        self.head_at = _NEVER  # set once the request is sent in full
        self.waiting = NOTHING
        self.response: UpstreamResponse | None = None
        self.seen = 0
        self.progress = 0.0
        self.expired: str | None = None

    def request_sent(self) -> None:
        self.head_at = _perf() + self.timeouts.response_headers

    def check(self, now: float) -> None:
        if self.waiting == NOTHING or self.expired is not None:
            return
        if now >= self.end_at:
            what, limit = self.end_why
            why = f"{what} of {limit:g}s"
        elif self.waiting == HEAD:
            if now < self.head_at:
                return
            why = f"no response head within {self.timeouts.response_headers:g}s"
        else:
            n = self.response.bytes_received if self.response is not None else 0
            if n != self.seen or not self.progress:
                self.seen, self.progress = n, now
                return
            if now - self.progress < self.idle:
                return
            why = f"the response body paused for more than {self.idle:g}s"
        self.expired = why
        if self.task is not None:
            self.task.cancel()

    async def wait(self, awaitable: Awaitable[T], waiting: int) -> T:
        """Await an upstream step; a deadline that passed meanwhile raises
        ``UpstreamError("timeout")``. Any other cancellation propagates."""
        self.waiting = waiting
        try:
            return await awaitable
        except asyncio.CancelledError:
            why = self.expired
            if why is None or (self.task is not None and self.task.uncancel() > 0):
                raise
            raise UpstreamError("timeout", why) from None
        finally:
            self.waiting = NOTHING


class Watched(Protocol):
    def check(self, now: float) -> None:
        """Compare the item's deadlines with ``now`` (``time.perf_counter``) and
        cancel its task when one has passed."""


class Deadlines:
    """One coarse timer for every upstream wait in flight.

    Every ``interval`` seconds (while anything is watched) each watched item is
    asked to ``check`` its deadlines. A timeout therefore fires between its limit
    and its limit plus ``interval`` after the event it measures from, never early;
    at 100 ms that is well inside the tolerance of limits measured in seconds."""

    __slots__ = ("_handle", "_loop", "_watched", "interval")

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._watched: dict[Watched, None] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._watched)

    def add(self, item: Watched) -> None:
        self._watched[item] = None
        if self._handle is None or self._loop is not asyncio.get_running_loop():
            self._arm()

    def discard(self, item: Watched) -> None:
        self._watched.pop(item, None)

    def _arm(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self.interval, self._sweep)

    def _sweep(self) -> None:
        self._handle = None
        if not self._watched:
            return  # re-armed by the next add
        now = time.perf_counter()
        for item in list(self._watched):
            try:
                item.check(now)
            except Exception:  # one broken item must not stop the others' timeouts
                self._watched.pop(item, None)
        self._arm()
