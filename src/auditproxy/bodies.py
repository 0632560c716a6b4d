"""Bodies on their way through the proxy: the capped copy kept for the audit and
the recording (:class:`Tap`), and the client's request body (:class:`RequestBody`),
streamed or held whole for a retry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from auditproxy.core.model import EMPTY_BODY, Body
from auditproxy.wire import ClientBodyError, ClientRequest


class Tap:
    """Counts the bytes of a body and keeps the first ``cap`` of them (joined
    once, when the body is asked for)."""

    __slots__ = ("cap", "kept", "parts", "size")

    def __init__(self, cap: int) -> None:
        self.size = 0
        self.kept = 0
        self.cap = cap
        self.parts: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        n = len(chunk)
        self.size += n
        room = self.cap - self.kept
        if room > 0:
            if n > room:
                chunk = chunk[:room]
                n = room
            self.parts.append(chunk)
            self.kept += n

    def body(self) -> Body:
        if not self.parts:
            return EMPTY_BODY if self.size == 0 else Body(size=self.size, sample=b"")
        if len(self.parts) > 1:
            self.parts[:] = [b"".join(self.parts)]
        return Body(size=self.size, sample=self.parts[0])


class RequestBody:
    """The client's request body, teed into ``tap``. The limits on it
    (``max_request_body``, ``client_read``) are the server's: its ``read`` raises
    ``ClientBodyError`` for them, and ``error`` keeps that kind. ``on_complete``
    runs once the whole body was read (the upstream owes the response head from
    then on)."""

    __slots__ = ("_chunks", "_client", "_done", "error", "on_complete", "tap")

    def __init__(self, client: ClientRequest, tap: Tap) -> None:
        self._client = client
        self.tap = tap
        self.error: str | None = None
        self.on_complete: Callable[[], None] | None = None
        self._chunks: list[bytes] = []  # read ahead by ``hold``
        self._done = False

    async def _next(self) -> bytes:
        if self._done:
            return b""
        try:
            chunk = await self._client.read()
        except ClientBodyError as exc:
            raise self._failed(exc.kind) from None
        if not chunk:
            self._done = True
            return b""
        self.tap.feed(chunk)
        return chunk

    def _failed(self, kind: str) -> ClientBodyError:
        self.error = kind
        return ClientBodyError(kind)

    async def hold(self, max_bytes: int) -> bytes | None:
        """Read the whole body if it is at most ``max_bytes``: the bytes, to be sent
        as often as needed; ``None`` when it is larger (what was read so far is
        kept and streamed first by ``stream``). Raises ``ClientBodyError``."""
        held = 0
        while True:
            chunk = await self._next()
            if not chunk:
                return b"".join(self._chunks)
            self._chunks.append(chunk)
            held += len(chunk)
            if held > max_bytes:
                return None

    async def stream(self) -> AsyncIterator[bytes]:
        """The body chunk by chunk (once), starting with anything ``hold`` read."""
        chunks, self._chunks = self._chunks, []
        for chunk in chunks:
            yield chunk
        while chunk := await self._next():
            yield chunk
        if self.on_complete is not None:
            self.on_complete()
