"""The upstream side of the data path (``wire.Upstream``): a keep-alive pool of
its own per upstream authority, one ``asyncio.Protocol`` per connection over
llhttp in response mode (``httptools.HttpResponseParser``).

- Pool: idle connections per (scheme, host, port), most recently used first;
  one closed after ``idle_timeout`` unused, at most ``max_idle`` kept per
  upstream. A connection goes back only when its response was read to the end,
  its request was sent whole and neither side asked to close; otherwise it is
  closed, never reused.
- A pooled connection that fails before any byte of the response arrived, on a
  request that can be sent again (idempotent method, body absent or in memory),
  is retried once on a fresh connection: the upstream may have closed it while
  it sat idle (as aiohttp and Envoy do).
- Bodies stream both ways: the request body is written by a task of its own
  (with ``Content-Length`` as the client sent it, else chunked) while the
  response is awaited; reading the response pauses the socket while the
  consumer is more than ``BODY_HIGH_WATER`` behind.
- Errors are mapped once, by :func:`classify`, to the SPEC §5 kinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import cast

import httptools

from auditproxy.http1.flow import WriteFlow, wake
from auditproxy.http1.framing import LAST_CHUNK, chunk, encode_head
from auditproxy.wire import ClientBodyError, ErrorKind, HeaderPairs, UpstreamError

BODY_HIGH_WATER = 64 * 1024
WRITE_HIGH_WATER = 64 * 1024
SMALL_BODY = 16 * 1024  # a request body up to this size goes in one write with the head
IDLE_TIMEOUT = 15.0
MAX_IDLE = 100
REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class _Stale(Exception):
    """A reused connection failed before any response byte (safe to retry)."""


def classify(exc: BaseException, *, connecting: bool = False) -> UpstreamError:
    """The one mapping from what talking to the upstream raised to a SPEC §5 kind."""
    if isinstance(exc, UpstreamError):
        return exc
    detail = str(exc) or type(exc).__name__
    kind: ErrorKind
    if connecting:
        kind = "connect"
        if isinstance(exc, TimeoutError):
            detail = "connect timed out"
    elif isinstance(exc, httptools.HttpParserError):
        kind = "protocol"
        detail = f"malformed response: {detail}"
    elif isinstance(exc, TimeoutError):
        kind = "timeout"
    elif isinstance(exc, OSError | EOFError | ssl.SSLError):
        kind = "reset"
    else:
        kind = "protocol"
    return UpstreamError(kind, detail)


# RFC 9110 §5.5 and RFC 9112 §4: a reason phrase and field values hold HTAB, SP,
# VCHAR and obs-text only; llhttp lets other control bytes through.
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _malformed_head(status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why a response head cannot be passed on as it is, or None."""
    if status < 100:
        return f"status {status:03d} is not a three-digit code from 100"
    if _CONTROL.search(reason) or _CONTROL.search(b"\t".join(v for _, v in headers)):
        return "a control character in the status line or a field value"
    return None


def _reset(detail: str) -> UpstreamError:
    return UpstreamError("reset", detail)


class Origin:
    """Where one upstream base URL points: pool key and the target prefix."""

    __slots__ = ("authority", "host", "key", "port", "prefix", "tls")

    def __init__(self, base: str) -> None:
        scheme, _, rest = base.partition("://")
        authority, slash, path = rest.partition("/")
        self.tls = scheme.lower() == "https"
        host, port = authority, 443 if self.tls else 80
        if authority.startswith("["):
            end = authority.index("]")
            host = authority[1:end]
            if authority[end + 1 : end + 2] == ":":
                port = int(authority[end + 2 :])
        elif ":" in authority:
            host, _, p = authority.rpartition(":")
            port = int(p)
        self.authority = authority  # the Host sent when the request has none
        self.host = host
        self.port = port
        self.prefix = (slash + path).rstrip("/")
        self.key = (self.tls, host.lower(), port)


class Connection(asyncio.Protocol):
    """One upstream connection; at most one exchange at a time."""

    def __init__(self, pool: UpstreamPool, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._response: Response | None = None
        self._head: asyncio.Future[Response] | None = None
        self._flow = WriteFlow(self.loop)
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._reason = b""
        self._got_bytes = False
        self._head_method = False
        self._stopped_head = False
        self._paused = False

    # -- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, same interface
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        response = self._response
        if self._head is None and (response is None or response.complete):
            self.close()  # bytes nobody asked for: the connection is out of step
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self._stopped_head:
                self._finish_head_response()
            else:
                self._fail(classify(exc))
                self.close()

    def eof_received(self) -> bool:
        response = self._response
        if response is not None and not response.complete and response.until_close:
            response.finished(reusable=False)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        response = self._response
        if response is not None and not response.complete and response.until_close and exc is None:
            response.finished(reusable=False)
        if self.reused and not self._got_bytes:
            self._fail(_Stale())
        else:
            self._fail(_reset(f"upstream closed the connection ({exc or 'EOF'})"))
        self._flow.release()

    def pause_writing(self) -> None:
        self._flow.pause()

    def resume_writing(self) -> None:
        self._flow.resume()

    # -- parser callbacks
    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._response is None:
            self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if self._head is None:
            raise _HeadDone  # a response nobody asked for
        if 100 <= status < 200 and status != 101:
            self._raw_headers = []  # an interim response: the final one follows
            self._reason = b""
            return
        malformed = _malformed_head(status, self._reason, self._raw_headers)
        if malformed is not None:
            self._fail(UpstreamError("protocol", f"malformed response: {malformed}"))
            raise _HeadDone  # the caller answers 502; the connection closes
        headers = tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in self._raw_headers)
        self._raw_headers = []
        response = Response(self, status, self._reason.decode("latin-1"), headers)
        response.version = parser.get_http_version()
        response.keep_alive = parser.should_keep_alive()
        self._reason = b""
        self._response = response
        head = self._head
        self._head = None
        if head is not None and not head.done():
            head.set_result(response)
        if self._head_method or status == 101:
            self._stopped_head = True
            raise _HeadDone

    def on_body(self, body: bytes) -> None:
        response = self._response
        if response is not None:
            response.feed(body)
            if response.buffered > BODY_HIGH_WATER and not self._paused:
                self._paused = True
                assert self.transport is not None
                self.transport.pause_reading()

    def on_message_complete(self) -> None:
        response = self._response
        if response is not None and not response.complete:
            response.finished(reusable=response.keep_alive)

    def _finish_head_response(self) -> None:
        response = self._response
        if response is not None:
            response.finished(reusable=False)

    # -- used by the exchange
    def resume(self) -> None:
        if self._paused and not self.closed and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def _fail(self, err: Exception) -> None:
        head = self._head
        self._head = None
        if head is not None and not head.done():
            head.set_exception(err)
        response = self._response
        if response is not None and not response.complete:
            response.failed(err if isinstance(err, UpstreamError) else _reset(str(err)))

    def begin(self, head_only: bool) -> asyncio.Future[Response]:
        self._response = None
        self._got_bytes = False
        self._head_method = head_only
        self._stopped_head = False
        self._head = self.loop.create_future()
        return self._head

    async def write(self, data: bytes) -> None:
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            raise self._broken()
        transport.write(data)
        if not self._flow.ok:
            await self._flow.drained()
            if self.closed:
                raise self._broken()

    def _broken(self) -> Exception:
        if self.reused and not self._got_bytes:
            return _Stale()
        return _reset("upstream connection closed while the request was sent")

    def fail_request(self, err: Exception) -> None:
        """The request body failed on the client's side: nothing more can be sent."""
        self._fail(err)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def done(self) -> None:
        """The exchange ended: back to the pool when it ended cleanly."""
        self._response = None
        self._head = None
        self.pool.put(self)


class _HeadDone(Exception):
    """Raised in the head callback to stop the parse: a HEAD response (no body
    follows, and llhttp cannot be told) or a response nobody asked for."""


class Response:
    """The head of an upstream response and its body (``wire.UpstreamResponse``)."""

    __slots__ = (
        "_chunks",
        "_conn",
        "_error",
        "_pump",
        "_released",
        "_reusable",
        "_waiter",
        "buffered",
        "bytes_received",
        "complete",
        "content_length",
        "headers",
        "keep_alive",
        "reason",
        "status",
        "until_close",
        "version",
    )

    def __init__(self, conn: Connection, status: int, reason: str, headers: HeaderPairs) -> None:
        self._conn = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        self.version = "1.1"
        self.keep_alive = True
        self.bytes_received = 0
        self.buffered = 0
        self.complete = False
        self._chunks: deque[bytes] = deque()
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reusable = False
        self._released = False
        self._pump: asyncio.Task[None] | None = None
        length: int | None = None
        chunked = False
        for name, value in headers:
            n = name.lower()
            if n == "content-length":
                with contextlib.suppress(ValueError):
                    length = int(value)
            elif n == "transfer-encoding":
                chunked = "chunked" in value.lower()
        self.content_length = None if chunked else length
        bodiless = status < 200 or status in (204, 304)
        self.until_close = not chunked and length is None and not bodiless

    # -- fed by the connection
    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        n = len(data)
        self.buffered += n
        self.bytes_received += n
        self._wake()

    def finished(self, *, reusable: bool) -> None:
        self.complete = True
        self._reusable = reusable
        self._wake()

    def failed(self, err: UpstreamError) -> None:
        if self._error is None:
            self._error = err
        self._wake()

    def _wake(self) -> None:
        wake(self._waiter)

    # -- the handler's side
    async def read(self) -> bytes:
        while True:
            if self._chunks:
                data = self._chunks.popleft()
                self.buffered -= len(data)
                if self.buffered <= BODY_HIGH_WATER // 4:
                    self._conn.resume()
                return data
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            self._waiter = self._conn.loop.create_future()
            try:
                await self._waiter
            except asyncio.CancelledError:
                self._conn.close()  # a cancelled read leaves nothing half-open
                raise
            finally:
                self._waiter = None

    async def read_all(self) -> bytes:
        parts = []
        while data := await self.read():
            parts.append(data)
        return b"".join(parts) if len(parts) != 1 else parts[0]

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        conn = self._conn
        pump = self._pump
        pumped = pump is None or (pump.done() and not pump.cancelled() and not pump.exception())
        if self.complete and self._reusable and not self._chunks and pumped and not conn.closed:
            conn.done()
            return
        if pump is not None and not pump.done():
            pump.cancel()
        conn.close()


class UpstreamPool:
    """``wire.Upstream``: one attempt per ``send``, pooled connections below."""

    def __init__(
        self,
        *,
        connect_timeout: float = 2.0,
        idle_timeout: float = IDLE_TIMEOUT,
        max_idle: int = MAX_IDLE,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle
        self._ssl = ssl_context
        self._origins: dict[str, Origin] = {}
        self._idle: dict[tuple[bool, str, int], deque[Connection]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self.opened = 0  # connections opened (for tests and the benchmark)

    def _origin(self, base: str) -> Origin:
        origin = self._origins.get(base)
        if origin is None:
            if len(self._origins) > 1024:
                self._origins.clear()
            origin = self._origins[base] = Origin(base)
        return origin

    async def send(
        self,
        base: str,
        method: str,
        target: str,
        headers: HeaderPairs,
        body: bytes | AsyncIterator[bytes] | None,
    ) -> Response:
        origin = self._origin(base)
        replayable = method in REPLAYABLE and not isinstance(body, AsyncIterator)
        conn = self._take(origin)
        if conn is not None:
            try:
                return await self._exchange(conn, origin, method, target, headers, body)
            except _Stale:
                if not replayable:
                    raise _reset("pooled upstream connection closed before the response") from None
        conn = await self._connect(origin)
        try:
            return await self._exchange(conn, origin, method, target, headers, body)
        except _Stale:
            raise _reset("upstream closed the connection before the response") from None

    async def _connect(self, origin: Origin) -> Connection:
        loop = asyncio.get_running_loop()
        ctx = None
        if origin.tls:
            ctx = self._ssl or ssl.create_default_context()
            self._ssl = ctx
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(self, origin),
                    origin.host,
                    origin.port,
                    ssl=ctx,
                    server_hostname=origin.host if ctx else None,
                )
        except (OSError, TimeoutError, socket.gaierror) as exc:
            raise classify(exc, connecting=True) from None
        self.opened += 1
        return conn

    async def _exchange(
        self,
        conn: Connection,
        origin: Origin,
        method: str,
        target: str,
        headers: HeaderPairs,
        body: bytes | AsyncIterator[bytes] | None,
    ) -> Response:
        out = list(headers)
        if not _has(headers, "host"):
            out.insert(0, ("Host", origin.authority))
        stream: AsyncIterator[bytes] | None = None
        chunked = False
        payload = b""
        if body is None or isinstance(body, bytes | bytearray | memoryview):
            payload = bytes(body or b"")
            if not _has(headers, "content-length") and (payload or method in ("POST", "PUT")):
                out.append(("Content-Length", str(len(payload))))
        else:
            stream = body
            if not _has(headers, "content-length"):
                chunked = True
                out.append(("Transfer-Encoding", "chunked"))
        head = encode_head(f"{method} {origin.prefix}{target} HTTP/1.1\r\n", out)
        waiter = conn.begin(method == "HEAD")
        pump: asyncio.Task[None] | None = None
        try:
            if stream is None:
                await conn.write(head + payload if len(payload) <= SMALL_BODY else head)
                if len(payload) > SMALL_BODY:
                    await conn.write(payload)
            else:
                await conn.write(head)
                pump = asyncio.get_running_loop().create_task(_pump(conn, stream, chunked))
            response = await waiter
        except asyncio.CancelledError:
            if pump is not None:
                pump.cancel()
            conn.close()
            raise
        except (UpstreamError, _Stale):
            if pump is not None:
                pump.cancel()
            conn.close()
            raise
        except ClientBodyError as exc:
            # The handler knows why from its own reading of the body.
            conn.close()
            raise UpstreamError("reset", f"the request body failed ({exc.kind})") from None
        except Exception as exc:
            if pump is not None:
                pump.cancel()
            conn.close()
            raise classify(exc) from None
        response._pump = pump
        return response

    # -- the pool
    def _take(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin.key)
        if not idle:
            return None
        expired = time.monotonic() - self.idle_timeout
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.idle_since > expired:
                conn.reused = True
                return conn
            conn.close()
        return None

    def put(self, conn: Connection) -> None:
        if conn.closed:
            return
        idle = self._idle.setdefault(conn.origin.key, deque())
        if len(idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)
        if self._sweeper is None:
            self._sweeper = conn.loop.call_later(self.idle_timeout, self._sweep)

    def forget(self, conn: Connection) -> None:
        idle = self._idle.get(conn.origin.key)
        if idle:
            with contextlib.suppress(ValueError):
                idle.remove(conn)

    def _sweep(self) -> None:
        self._sweeper = None
        expired = time.monotonic() - self.idle_timeout
        left = False
        for idle in self._idle.values():
            while idle and idle[0].idle_since <= expired:
                idle.popleft().close()
            left = left or bool(idle)
        if left:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(self.idle_timeout / 2, self._sweep)

    def idle_count(self) -> int:
        return sum(len(d) for d in self._idle.values())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()


def _has(headers: HeaderPairs, name: str) -> bool:
    return any(n.lower() == name for n, _ in headers)


async def _pump(conn: Connection, body: AsyncIterator[bytes], chunked: bool) -> None:
    """Write the request body as it comes; a client-side failure ends the exchange."""
    try:
        async for data in body:
            if data:
                await conn.write(chunk(data) if chunked else data)
        if chunked:
            await conn.write(LAST_CHUNK)
    except ClientBodyError as exc:
        conn.fail_request(exc)
    except (UpstreamError, _Stale):
        pass  # the response side reports the broken connection
    except Exception:
        conn.fail_request(ClientBodyError("client_disconnected"))
