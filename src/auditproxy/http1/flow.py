"""Write-side flow control shared by both protocols: the transport calls
``pause_writing``/``resume_writing`` around its high-water mark, and a writer
awaits :meth:`WriteFlow.drained` only while paused (STYLE §2.6b)."""

from __future__ import annotations

import asyncio


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
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    async def drained(self) -> None:
        self._drain = self.loop.create_future()
        try:
            await self._drain
        finally:
            self._drain = None
