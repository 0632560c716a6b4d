"""One request/response cycle on a client connection (STYLE §2.6b): the request
as the handler reads it (``wire.ClientRequest``: the head and the body, buffered
up to a high-water mark) and the reply (``wire.Reply``: framing from the headers
the handler gives)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol
from urllib.parse import unquote

from yarl import URL

from auditproxy.http1.flow import wake
from auditproxy.http1.framing import (
    LAST_CHUNK,
    chunk,
    encode_head,
    http_date,
    reason_for,
    status_line,
)
from auditproxy.wire import ClientBodyError, HeaderPairs, Rejection

BODY_HIGH_WATER = 64 * 1024  # buffered request body above which reading pauses


class Limits(Protocol):
    @property
    def max_request_body(self) -> int: ...
    @property
    def client_read(self) -> float: ...


class Connection(Protocol):
    """What a cycle needs from its connection (``server.HttpProtocol``)."""

    loop: asyncio.AbstractEventLoop
    remote: str
    closed: bool
    last: bool

    @property
    def limits(self) -> Limits: ...
    def body_backlog(self) -> None: ...
    def body_drained(self) -> None: ...
    def stop_reading(self) -> None: ...
    def send_continue(self) -> None: ...
    async def write(self, data: bytes) -> bool: ...
    async def sleep(self, delay: float) -> bool: ...
    def abort(self) -> None: ...


class Request:
    """One request as the client sent it (``wire.ClientRequest``)."""

    __slots__ = (
        "_chunks",
        "_conn",
        "_timer",
        "_waiter",
        "buffered",
        "chunked",
        "complete",
        "content_length",
        "error",
        "expect_continue",
        "has_body",
        "headers",
        "host",
        "keep_alive",
        "method",
        "received",
        "rejection",
        "remote",
        "scheme",
        "target",
        "version",
    )

    def __init__(
        self,
        conn: Connection,
        method: str,
        target: str,
        version: str,
        headers: HeaderPairs,
        host: str,
    ) -> None:
        self._conn = conn
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.host = host
        self.scheme = "http"
        self.remote = conn.remote
        self.rejection: Rejection | None = None
        self.content_length: int | None = None
        self.chunked = False
        self.has_body = False
        self.keep_alive = True
        self.expect_continue = False
        self._chunks: deque[bytes] = deque()
        self.buffered = 0
        self.received = 0
        self.complete = False
        self.error: str | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def path(self) -> str:
        target = self.target
        if target.startswith("/"):
            raw = target.split("?", 1)[0]
            return unquote(raw) if "%" in raw else raw
        if target == "*" or not target:
            return target
        try:
            return URL(target, encoded=True).path
        except ValueError:
            return target

    # -- fed by the connection
    def feed(self, data: bytes) -> None:
        if self.error is not None:
            return
        n = len(data)
        self.received += n
        if self.received > self._conn.limits.max_request_body:
            self.fail("body_too_large")
            return
        self._chunks.append(data)
        self.buffered += n
        if self.buffered > BODY_HIGH_WATER:
            self._conn.body_backlog()
        self._wake()

    def finished(self) -> None:
        self.complete = True
        self._wake()

    def fail(self, kind: str) -> None:
        if self.error is None and not self.complete:
            self.error = kind
            self.keep_alive = False
            self._conn.stop_reading()
            self._wake()

    def _wake(self) -> None:
        wake(self._waiter)

    # -- the handler's side
    async def read(self) -> bytes:
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks.popleft()
                self.buffered -= len(data)
                if self.buffered <= BODY_HIGH_WATER // 4:
                    self._conn.body_drained()
                return data
            if self.error is not None:
                raise ClientBodyError(self.error)
            if self.complete:
                return b""
            if self.expect_continue:
                self.expect_continue = False
                self._conn.send_continue()
            await self._wait()

    async def _wait(self) -> None:
        loop = self._conn.loop
        self._waiter = waiter = loop.create_future()
        self._timer = loop.call_later(self._conn.limits.client_read, self._read_timed_out)
        try:
            await waiter
        finally:
            self._waiter = None
            self._timer.cancel()
            self._timer = None

    def _read_timed_out(self) -> None:
        self.fail("client_read_timeout")


class ResponseWriter:
    """The reply to one request (``wire.Reply``): framing from the handler's headers."""

    __slots__ = (
        "_chunked",
        "_conn",
        "_left",
        "_no_body",
        "_request",
        "done",
        "keep_alive",
        "started",
    )

    def __init__(self, conn: Connection, request: Request) -> None:
        self._conn = conn
        self._request = request
        self.started = False
        self.done = False
        self.keep_alive = request.keep_alive
        self._chunked = False
        self._no_body = False
        self._left: int | None = None  # Content-Length bytes still owed

    def _head(self, status: int, reason: str, headers: HeaderPairs, body: bytes | None) -> bytes:
        request = self._request
        no_body = self._no_body = request.method == "HEAD" or status < 200 or status in (204, 304)
        out = list(headers)
        length: int | None = None
        has_date = False
        for name, value in headers:
            n = name.lower()
            if n == "content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
            elif n == "date":
                has_date = True
            elif n == "connection":
                # The connection is the writer's: a handler's "close" is honoured,
                # and the field is written once, below.
                out.remove((name, value))
                if "close" in value.lower():
                    self.keep_alive = False
        if not has_date:
            out.append(("Date", http_date.now()))
        if not no_body:
            if length is None and body is not None:
                length = len(body)
                out.append(("Content-Length", str(length)))
            if length is not None:
                self._left = length
            elif request.version == "1.1":
                self._chunked = True
                out.append(("Transfer-Encoding", "chunked"))
            else:
                self.keep_alive = False  # the close delimits the body
        if (
            not (request.keep_alive and request.complete)
            or request.rejection is not None
            or self._conn.last
        ):
            self.keep_alive = False  # an unread rest of the body is not parsed for a request
        if not self.keep_alive:
            out.append(("Connection", "close"))
        elif request.version == "1.0":
            out.append(("Connection", "keep-alive"))
        return encode_head(status_line(status, reason or reason_for(status)), out)

    async def send(self, status: int, reason: str, headers: HeaderPairs, body: bytes) -> bool:
        if self.started or self._conn.closed:
            return False
        head = self._head(status, reason, headers, body)
        self.started = True
        self.done = True
        if not self._no_body and body:
            if self._left is not None and self._left != len(body):
                self.keep_alive = False
            head += body
        return await self._conn.write(head)

    async def start(self, status: int, reason: str, headers: HeaderPairs) -> bool:
        if self.started or self._conn.closed:
            return False
        head = self._head(status, reason, headers, None)
        self.started = True
        return await self._conn.write(head)

    async def write(self, data: bytes) -> bool:
        if not self.started or self.done or self._conn.closed:
            return False
        if self._no_body or not data:
            return True
        left = self._left
        if left is not None:
            if len(data) > left:
                data = data[:left]
                self.keep_alive = False
            self._left = left - len(data)
        elif self._chunked:
            data = chunk(data)
        return await self._conn.write(data)

    async def end(self) -> bool:
        if not self.started or self.done or self._conn.closed:
            return False
        self.done = True
        if self._left:
            # Fewer bytes than announced: only a close tells the client.
            self._conn.abort()
            return False
        if self._chunked and not self._no_body:
            return await self._conn.write(LAST_CHUNK)
        return True

    def abort(self) -> None:
        self.done = True
        self.keep_alive = False
        self._conn.abort()

    async def pause(self, delay: float) -> bool:
        return await self._conn.sleep(delay)
