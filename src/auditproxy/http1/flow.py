"""Write-side flow control shared by both protocols: the transport calls
``pause_writing``/``resume_writing`` around its high-water mark, and a writer
awaits :meth:`WriteFlow.drained` only while paused (STYLE §2.6b)."""

from __future__ import annotations

import asyncio


def wake(waiter: asyncio.Future[None] | None) -> None:
    """Resolve a waiter someone may be awaiting (nothing when there is none)."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class WriteFlow:
    __slots__ = ("_drain", "loop", "ok")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ok = True
        self._drain: asyncio.Future[None] | None = None

    def pause(self) -> None:
        self.ok = False

    def resume(self) -> None:
        self.ok = True
        self.release()

    def release(self) -> None:
        """Wake a waiting writer (also when the connection is lost)."""
        wake(self._drain)

    async def drained(self) -> None:
        self._drain = self.loop.create_future()
        try:
            await self._drain
        finally:
            self._drain = None
