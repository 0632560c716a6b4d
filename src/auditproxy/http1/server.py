"""The client side of the data path: one ``asyncio.Protocol`` per connection over
llhttp (``httptools.HttpRequestParser``), after uvicorn's httptools protocol
(STYLE §2.6b).

The parser calls back into the connection; ``on_headers_complete`` makes one
small request object and one reply object, and the handler
(``async handler(request, reply)``) runs once per request in a task of its own.
Requests of one connection are handled one after another, so pipelined
requests are answered in order; reading stops while a parsed request waits its
turn, so parsing ahead is bounded by one piece of input (``HEAD_PIECE``).

Limits native to the protocol (SPEC §4, §5):

- ``client_header``: the whole head must arrive within it (408, or a silent
  close when no byte of a request came); between requests the keep-alive idle
  timeout applies;
- ``max_header_bytes``: a request line over it gets 414, a header section over
  it 431, before the handler sees anything;
- ambiguous or unsupported framing (Content-Length with Transfer-Encoding,
  more than one Content-Length, a transfer coding other than ``chunked``),
  anything llhttp refuses in strict mode, a second ``Host``: 400; a version
  other than 1.0 or 1.1: 505;
- ``client_read`` (the longest pause while the handler waits for body bytes)
  and ``max_request_body``: ``ClientBodyError`` from ``read``;
- ``max_connections``: a connection beyond it is accepted but not read until
  another one closes (back-pressure instead of memory).

A refused request still reaches the handler, with ``rejection`` set, and the
connection closes after its answer.

llhttp knows a fixed list of methods. A request whose method token is an
extension method (RFC 9110 §9.1: any token) is located exactly where llhttp
refused it (at a message boundary that a second parser run over the bytes since
the last known boundary finds), its method token is swapped for ``GET`` and the
original token is kept for the request; the parse itself stays llhttp's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import httptools
import structlog

from auditproxy.http1.cycle import Request, ResponseWriter
from auditproxy.http1.flow import WriteFlow, wake
from auditproxy.http1.framing import (
    CONTINUE,
)
from auditproxy.http1.methods import TOKEN, message_start
from auditproxy.wire import ClientRequest, Rejection, Reply

log = structlog.get_logger("auditproxy")

Handler = Callable[[ClientRequest, Reply], Awaitable[None]]

HEAD_PIECE = 8 * 1024  # input fed to the parser at a time while a head is parsed
WRITE_HIGH_WATER = 64 * 1024  # unsent response bytes above which writers wait
KEEP_ALIVE = 75.0  # idle seconds between requests before the connection closes
LINGER = 2.0  # seconds the input is still drained after the last answer
_NEVER = float("inf")
_SINCE_CAP = 256 * 1024  # input kept since the last message boundary (method swap)

# Why reading is paused (bits).
_P_GATE, _P_BODY, _P_PIPE, _P_DONE = 1, 2, 4, 8


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    max_header_bytes: int = 16 * 1024
    max_request_body: int = 10 * 1024**2
    client_header: float = 10.0
    client_read: float = 10.0
    keep_alive: float = KEEP_ALIVE
    max_connections: int = 1024


def _line_too_long(limit: int) -> Rejection:
    return Rejection(414, "uri-too-long",
                     f"the request line exceeds the proxy's limit of {limit} bytes")  # fmt: skip


def _head_too_large(limit: int) -> Rejection:
    return Rejection(431, "headers-too-large",
                     f"the header section exceeds the proxy's limit of {limit} bytes")  # fmt: skip


class _Stop(Exception):
    """Raised in a parser callback to stop the parse (the reason is kept aside)."""


class _Gate:
    """``max_connections``: connections beyond it wait, unread, for a free place."""

    __slots__ = ("active", "limit", "waiting")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.waiting: deque[HttpProtocol] = deque()

    def admit(self, conn: HttpProtocol) -> bool:
        if self.active < self.limit:
            self.active += 1
            return True
        self.waiting.append(conn)
        return False

    def leave(self, conn: HttpProtocol, admitted: bool) -> None:
        if not admitted:
            with contextlib.suppress(ValueError):
                self.waiting.remove(conn)
            return
        self.active -= 1
        while self.waiting and self.active < self.limit:
            nxt = self.waiting.popleft()
            if not nxt.closed:
                self.active += 1
                nxt.admitted()


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(
        self,
        handler: Handler,
        limits: ServerLimits,
        gate: _Gate,
        connections: set[HttpProtocol],
    ) -> None:
        self.handler = handler
        self.limits = limits
        self.loop = asyncio.get_running_loop()
        self._gate = gate
        self._connections = connections
        self._admitted = False
        self.transport: asyncio.Transport | None = None
        self.remote = ""
        self._local = ""
        self.closed = False
        self._paused = 0
        self._flow = WriteFlow(self.loop)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._deadline = _NEVER
        # the parse
        self._parser = httptools.HttpRequestParser(self)
        self._reading = True  # False once nothing more is parsed on this connection
        self._in_head = True  # between messages, or inside a head
        self._begun = False  # a message began and its head is not complete
        self._url = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._head_fed = 0
        self._method_swap: str | None = None
        self._since: list[bytes] | None = []  # input since the last message boundary
        self._since_len = 0
        self._since_done = 0  # messages completed since that boundary
        self._parsing: Request | None = None  # the request whose message is being parsed
        self._parsing_done_last: Request | None = None  # the last one parsed in full
        self._stop: Rejection | None = None
        self._unfed = b""
        # the handling
        self._active: Request | None = None
        self._queue: deque[Request] = deque()
        self.task: asyncio.Task[None] | None = None  # the handler of the active request
        self._lingering = False
        self.last = False  # close after the request in progress (shutdown)
        self._gone: asyncio.Future[None] | None = None  # a reply's pause in progress

    # ------------------------------------------------------------ connection
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, same interface
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.remote = str(peer[0])
        sock = transport.get_extra_info("sockname")
        if isinstance(sock, tuple):
            host = str(sock[0])
            self._local = f"[{host}]:{sock[1]}" if ":" in host else f"{host}:{sock[1]}"
        self._connections.add(self)
        if self._gate.admit(self):
            self._admitted = True
            self._arm(self.limits.client_header)
        else:
            self.pause(_P_GATE)

    def admitted(self) -> None:
        self._admitted = True
        self._arm(self.limits.client_header)
        self.resume(_P_GATE)
        data, self._unfed = self._unfed, b""
        if data:
            self._feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._connections.discard(self)
        self._gate.leave(self, self._admitted)
        self._admitted = False
        self._disarm()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        parsing = self._parsing
        if parsing is not None and not parsing.complete:
            parsing.fail("client_disconnected")
        for req in self._queue:
            if not req.complete:
                req.fail("client_disconnected")
        self._flow.release()
        wake(self._gone)

    def pause_writing(self) -> None:
        self._flow.pause()

    def resume_writing(self) -> None:
        self._flow.resume()

    def pause(self, why: int) -> None:
        if not self._paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self._paused |= why

    def resume(self, why: int) -> None:
        if not self._paused & why:
            return
        self._paused &= ~why
        if not self._paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def body_backlog(self) -> None:
        self.pause(_P_BODY)

    def body_drained(self) -> None:
        self.resume(_P_BODY)

    def stop_reading(self) -> None:
        """Nothing more is parsed: the connection closes after the current answer."""
        self._reading = False
        self._unfed = b""
        self.pause(_P_DONE)

    # -- writing
    async def write(self, data: bytes) -> bool:
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            return False
        transport.write(data)
        if not self._flow.ok:
            await self._flow.drained()
        return not self.closed

    async def sleep(self, delay: float) -> bool:
        """Wait ``delay`` seconds; ``False`` at once when the client is gone."""
        if self.closed:
            return False
        self._gone = gone = self.loop.create_future()
        timer = self.loop.call_later(delay, gone.set_result, None)
        try:
            await gone
        finally:
            timer.cancel()
            self._gone = None
        return not self.closed

    def send_continue(self) -> None:
        transport = self.transport
        if transport is not None and not self.closed and not transport.is_closing():
            transport.write(CONTINUE)

    def abort(self) -> None:
        self._reading = False
        if self.transport is not None:
            self.transport.abort()

    # -- the connection's one deadline (head deadline or keep-alive idle), checked
    # by a timer that is rescheduled lazily: moving the deadline costs no timer
    # handle, and the timer wakes at most every ``client_header`` seconds.
    def _arm(self, seconds: float) -> None:
        now = self.loop.time()
        deadline = self._deadline = now + seconds
        timer = self._timer
        if timer is None or self._timer_at > deadline:
            if timer is not None:
                timer.cancel()
            self._schedule(min(deadline, now + self.limits.client_header))

    def _disarm(self) -> None:
        self._deadline = _NEVER

    def _schedule(self, at: float) -> None:
        self._timer_at = at
        self._timer = self.loop.call_at(at, self._tick)

    def _tick(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline == _NEVER or self.closed:
            return
        now = self.loop.time()
        if now < deadline:
            self._schedule(min(deadline, now + self.limits.client_header))
            return
        self._deadline = _NEVER
        self._timed_out()

    def _timed_out(self) -> None:
        if self.closed or self._active is not None or self._queue:
            return
        if self._begun:
            self._reject(408, "client-timeout",
                         f"the request head did not arrive within "
                         f"{self.limits.client_header:g}s")  # fmt: skip
        elif self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------ input
    def data_received(self, data: bytes) -> None:
        if not self._reading:
            return  # after the last request of the connection: dropped
        if self._paused & _P_GATE:
            # uvloop may deliver once before a pause asked for in connection_made
            self._unfed += data
            if self.transport is not None:
                self.transport.pause_reading()
            return
        if self._unfed or self._queue:
            self._unfed += data
            self.pause(_P_PIPE)
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        while data and self._reading:
            if self._queue:
                self._unfed = data
                self.pause(_P_PIPE)
                return
            if self._in_head and len(data) > HEAD_PIECE:
                piece, data = data[:HEAD_PIECE], data[HEAD_PIECE:]
            else:
                piece, data = data, b""
            rest = self._feed_piece(piece)
            if rest:
                data = rest + data

    def _feed_piece(self, piece: bytes) -> bytes:
        """Feed one piece; returns input that must be fed again (after a method
        swap or an ignored upgrade), else ``b""``."""
        since = self._since
        if since is not None:
            since.append(piece)
            self._since_len += len(piece)
        if self._in_head:
            self._head_fed += len(piece)
        try:
            self._parser.feed_data(piece)
        except httptools.HttpParserUpgrade:
            self._upgraded()
            return b""
        except httptools.HttpParserInvalidMethodError:
            if self._stop is None:
                return self._swap_method()
            self._reject_stopped()
            return b""
        except httptools.HttpParserError as exc:
            self._parse_error(exc)
            return b""
        if self._in_head:
            if not self._begun:
                self._mark_boundary()
            elif self._head_fed > 2 * self.limits.max_header_bytes + HEAD_PIECE + 1024:
                self._head_too_large()
        elif since is not None and self._since_len > _SINCE_CAP:
            self._since = None
        return b""

    def _mark_boundary(self) -> None:
        since = self._since
        if since is None:
            self._since = []
        else:
            since.clear()
        self._since_len = 0
        self._since_done = 0
        self._head_fed = 0

    def _upgraded(self) -> None:
        # llhttp stops after a CONNECT or Upgrade request and skips its body.
        # The proxy upgrades nothing: such a request is answered as it is and
        # the connection closes after it, so no byte after it is taken as a request.
        req = self._parsing_done_last
        if req is not None:
            req.keep_alive = False
        self.stop_reading()

    def _head_too_large(self) -> None:
        limit = self.limits.max_header_bytes
        too_long = len(self._url) > limit or not self._raw_headers
        self._refuse(_line_too_long(limit) if too_long else _head_too_large(limit))

    def _parse_error(self, exc: Exception) -> None:
        if self._stop is not None:
            self._reject_stopped()
            return
        last = self._parsing_done_last
        if not self._begun and last is not None and not last.keep_alive:
            self.stop_reading()  # bytes after a request that closes: not read
            return
        detail = str(exc) or type(exc).__name__
        parsing = self._parsing
        if parsing is not None and not self._in_head:
            parsing.fail("client_disconnected")  # malformed body framing
            return
        self._reject(400, "bad-request", f"malformed request: {detail}")

    def _reject_stopped(self) -> None:
        stop = self._stop
        assert stop is not None
        self._stop = None
        self._refuse(stop)

    def _refuse(self, rejection: Rejection) -> None:
        self._reject(rejection.status, rejection.kind, rejection.detail)

    def _swap_method(self) -> bytes:
        """An extension method at a message boundary: swap its token for one
        llhttp knows and parse again from there with a fresh parser."""
        if self._since is None:
            self._reject(400, "bad-request",
                         "an extension method right after a large pipelined body")  # fmt: skip
            return b""
        buf = b"".join(self._since)
        start = message_start(buf, self._since_done)
        while start < len(buf) and buf[start] in b"\r\n":
            start += 1
        limit = self.limits.max_header_bytes
        space = buf.find(b" ", start, start + limit + 1)
        token = buf[start:space] if space > start else b""
        if not token or not TOKEN.fullmatch(token):
            if space < 0 and len(buf) - start > limit:
                self._refuse(_line_too_long(limit))
            else:
                self._reject(400, "bad-request", "malformed request: invalid method")
            return b""
        self._method_swap = token.decode("ascii")
        self._parser = httptools.HttpRequestParser(self)
        self._begun = False
        self._in_head = True
        self._since = []
        self._since_len = 0
        self._since_done = 0
        self._head_fed = 0
        return b"GET" + buf[space:]

    # -- parser callbacks
    def on_message_begin(self) -> None:
        self._begun = True
        self._in_head = True
        self._url = b""
        self._raw_headers = []
        self._header_bytes = 0
        if self._active is None and not self._queue:
            self._arm(self.limits.client_header)

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.limits.max_header_bytes:
            self._stop = _line_too_long(self.limits.max_header_bytes)
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            return  # a trailer field of a chunked body: not forwarded
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.limits.max_header_bytes:
            self._stop = _head_too_large(self.limits.max_header_bytes)
            raise _Stop
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._begun = False
        self._head_fed = 0
        self._disarm()
        parser = self._parser
        method = self._method_swap
        self._method_swap = None
        if method is None:
            method = parser.get_method().decode("ascii")
        version = parser.get_http_version()
        headers = tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in self._raw_headers)
        host = ""
        hosts = 0
        length: int | None = None
        chunked = expect = False
        for name, value in headers:
            first = name[0]
            if first in "hH" and name.lower() == "host":
                host = value
                hosts += 1
            elif first in "cC" and name.lower() == "content-length":
                length = int(value)
            elif first in "tT" and name.lower() == "transfer-encoding":
                if value.strip().lower() != "chunked":
                    self._stop = Rejection(400, "bad-request",
                                           f"unsupported transfer coding {value!r}")  # fmt: skip
                    raise _Stop
                chunked = True
            elif first in "eE" and name.lower() == "expect":
                expect = value.strip().lower() == "100-continue"
        if version not in ("1.1", "1.0"):
            self._stop = Rejection(505, "version-not-supported",
                                   f"HTTP/{version} is not supported")  # fmt: skip
            raise _Stop
        if hosts > 1 or (hosts == 0 and version == "1.1"):
            why = "more than one Host field" if hosts else "an HTTP/1.1 request needs a Host field"
            self._stop = Rejection(400, "bad-request", why)  # RFC 9112 §3.2
            raise _Stop
        req = Request(self, method, self._url.decode("latin-1"), version, headers,
                      host or self._local)  # fmt: skip
        req.content_length = length
        req.chunked = chunked
        req.has_body = chunked or bool(length)
        req.keep_alive = parser.should_keep_alive() and method != "CONNECT"
        if parser.should_upgrade() and req.has_body:
            self._stop = Rejection(400, "bad-request",
                                   "an upgrade request with a body is not supported")  # fmt: skip
            raise _Stop
        req.expect_continue = expect and req.has_body and version == "1.1"
        self._parsing = req
        self._dispatch(req)

    def on_body(self, body: bytes) -> None:
        req = self._parsing
        if req is not None:
            req.feed(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        self._begun = False
        self._since_done += 1
        req = self._parsing
        self._parsing = None
        if req is not None:
            req.finished()
            self._parsing_done_last = req
            if not req.keep_alive:
                self.stop_reading()

    # ------------------------------------------------------------ handling
    def _reject(self, status: int, kind: str, detail: str) -> None:
        """Stop parsing; answer with the rejection in turn, then close."""
        self.stop_reading()
        self._disarm()
        method = self._method_swap or ""
        if not method and (self._url or self._raw_headers):
            method = self._parser.get_method().decode("ascii")
        headers = tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in self._raw_headers)
        host = next((v for n, v in headers if n.lower() == "host"), self._local)
        req = Request(self, method, self._url.decode("latin-1"), "1.1", headers, host)
        req.rejection = Rejection(status, kind, detail)
        req.keep_alive = False
        req.complete = True
        self._parsing = None
        self._begun = False
        self._dispatch(req)

    def _dispatch(self, req: Request) -> None:
        if self._active is None:
            self._start(req)
        else:
            self._queue.append(req)

    def _start(self, req: Request) -> None:
        self._active = req
        self._disarm()
        self.task = self.loop.create_task(self._run(req, ResponseWriter(self, req)))

    async def _run(self, req: Request, reply: ResponseWriter) -> None:
        try:
            await self.handler(req, reply)
        except Exception as exc:
            log.error("handler_failed", error=f"{type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            self.abort()
            raise
        finally:
            self._finished(req, reply)

    def _finished(self, req: Request, reply: ResponseWriter) -> None:
        self._active = None
        self.task = None
        if self.closed:
            return
        if not reply.done:
            if reply.started:
                self.abort()  # a truncated response must not look whole
                return
            self.transport.write(  # type: ignore[union-attr]
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                b"Connection: close\r\n\r\n"
            )
            reply.keep_alive = False
        if self.last or not (
            reply.keep_alive and req.keep_alive and req.complete and req.error is None
        ):
            self._queue.clear()
            self._linger()
            return
        if self._queue:
            self._start(self._queue.popleft())
        if not self._queue:
            data, self._unfed = self._unfed, b""
            self.resume(_P_PIPE)
            if data:
                self._feed(data)
        if self._active is None and not self.closed:
            self._arm(self.limits.client_header if self._begun else self.limits.keep_alive)

    def _linger(self) -> None:
        """Close after the answer without losing it: send FIN, then read and drop
        what the client still sends (closing with unread input would reset the
        connection and could destroy the answer in the client's buffer) until it
        closes too, for at most ``LINGER`` seconds."""
        transport = self.transport
        assert transport is not None
        self._reading = False
        self._unfed = b""
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._lingering = True
        self._paused = 0
        transport.resume_reading()
        self._disarm()
        self.loop.call_later(LINGER, transport.close)

    def eof_received(self) -> bool | None:
        if self._lingering and self.transport is not None:
            self.transport.close()
        return None

    def close_idle(self) -> bool:
        """Close now when no request is in progress (graceful shutdown)."""
        if self._active is None and not self._queue and not self._begun:
            if self.transport is not None:
                self.transport.close()
            return True
        self.last = True
        return False


class HttpServer:
    """A listening socket serving ``handler`` with :class:`HttpProtocol`."""

    def __init__(self, handler: Handler, limits: ServerLimits) -> None:
        self.handler = handler
        self.limits = limits
        self.connections: set[HttpProtocol] = set()
        self._gate = _Gate(limits.max_connections)
        self._server: asyncio.Server | None = None
        self._address = ("", 0)

    def _protocol(self) -> HttpProtocol:
        return HttpProtocol(self.handler, self.limits, self._gate, self.connections)

    async def start(
        self, host: str, port: int, *, reuse_port: bool = False, backlog: int = 128
    ) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, host, port, reuse_port=reuse_port or None, backlog=backlog
        )
        sock: Any = self._server.sockets[0].getsockname()
        self._address = (str(sock[0]), int(sock[1]))

    @property
    def address(self) -> tuple[str, int]:
        return self._address

    async def stop_accepting(self) -> None:
        """Stop listening; idle connections close now, busy ones after their request."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for conn in list(self.connections):
            conn.close_idle()

    async def finish_handlers(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the handlers still running (their
        finish steps, after the answer) before connections are cut."""
        tasks = [c.task for c in self.connections if c.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def close_all(self) -> None:
        for conn in list(self.connections):
            conn.abort()

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, close idle connections, let requests in progress
        finish within ``grace`` seconds, then close what is left."""
        await self.stop_accepting()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.05)
            for conn in list(self.connections):
                conn.close_idle()
        self.close_all()
