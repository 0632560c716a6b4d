"""The client-side protocol (``auditproxy.http1.server``) against raw sockets on
127.0.0.1: framing, pipelining, keep-alive, 100-continue, limits, back-pressure."""

from __future__ import annotations

import asyncio
import time

import pytest

from auditproxy.wire import ClientBodyError, ClientRequest, Reply

from .conftest import Connect, RawClient, ServeFactory


async def test_content_length_and_chunked_bodies(serve: ServeFactory, client: Connect) -> None:
    """Both request framings deliver the body; the reply gets a Content-Length and a Date."""
    s = await serve()
    c: RawClient = await client(s.port)
    await c.send(b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
    r = await c.response()
    assert (r.status, r.body, r.header("content-length")) == (200, b"hello", "5")
    assert (r.header("date") or "").endswith("GMT")
    await c.send(b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n")  # fmt: skip
    r = await c.response()
    assert r.body == b"abcde"
    req = s.seen[1]
    assert req.has_body
    assert req.content_length is None
    assert ("X-Trailer", "t") not in req.headers  # trailers are not request headers


async def test_pipelined_requests_answered_in_order(serve: ServeFactory, client: Connect) -> None:
    """Three pipelined requests, the first one slow: answers come in request order."""

    async def slow_first(request: ClientRequest, reply: Reply) -> None:
        if request.target == "/1":
            await asyncio.sleep(0.2)
        await reply.send(200, "OK", (("X-T", request.target),), request.target.encode())

    s = await serve(slow_first)
    c = await client(s.port)
    await c.send(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
                 b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n")  # fmt: skip
    bodies = [(await c.response()).body for _ in range(3)]
    assert bodies == [b"/1", b"/2", b"/3"]


async def test_extension_methods_on_every_request(serve: ServeFactory, client: Connect) -> None:
    """Extension methods (and a lower-case 'get', which is not GET) on later and
    pipelined requests of one connection, after a body the parser delimited."""
    s = await serve()
    c = await client(s.port)
    await c.send(b"GET /0 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (await c.response()).header("x-method") == "GET"
    await c.send(b"POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nFOO / "
                 b"FOOBAR /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nxy"
                 b"get /3 HTTP/1.1\r\nHost: h\r\n\r\n"
                 b"PURGE /4 HTTP/1.1\r\nHost: h\r\n\r\n")  # fmt: skip
    got = [await c.response() for _ in range(4)]
    assert [(r.header("x-method"), r.header("x-target"), r.body) for r in got] == [
        ("POST", "/1", b"FOO / "),
        ("FOOBAR", "/2", b"xy"),
        ("get", "/3", b""),
        ("PURGE", "/4", b""),
    ]


async def test_invalid_method_token_rejected(serve: ServeFactory, client: Connect) -> None:
    """A method that is not a token gets 400 and the connection closes."""
    s = await serve()
    c = await client(s.port)
    await c.send(b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n")
    r = await c.response()
    assert r.status == 400
    assert s.seen[0].rejection is not None
    assert await c.closed()


async def test_keep_alive_and_connection_close(serve: ServeFactory, client: Connect) -> None:
    """1.1 stays open; Connection: close is honoured and announced; nothing after it is read."""
    s = await serve()
    c = await client(s.port)
    for i in range(3):
        await c.send(f"GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        r = await c.response()
        assert r.header("connection") is None
    await c.send(b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /y HTTP/1.1\r\n\r\n")
    r = await c.response()
    assert r.header("connection") == "close"
    assert await c.closed()
    assert [q.target for q in s.seen] == ["/0", "/1", "/2", "/x"]


async def test_http10_keep_alive_and_close_delimited(serve: ServeFactory, client: Connect) -> None:
    """1.0 with keep-alive gets Connection: keep-alive; a streamed body without a
    length is close-delimited on 1.0 and chunked on 1.1."""

    async def stream(request: ClientRequest, reply: Reply) -> None:
        await reply.start(200, "OK", (("Content-Type", "text/plain"),))
        await reply.write(b"ab")
        await reply.write(b"cd")
        await reply.end()

    s = await serve()
    c = await client(s.port)
    await c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    r = await c.response()
    assert r.header("connection") == "keep-alive"
    await c.send(b"GET / HTTP/1.0\r\n\r\n")
    r = await c.response()
    assert r.header("connection") == "close"
    assert await c.closed()

    s2 = await serve(stream)
    c = await client(s2.port)
    await c.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    r = await c.response()
    assert (r.header("transfer-encoding"), r.body) == ("chunked", b"abcd")
    c = await client(s2.port)
    await c.send(b"GET / HTTP/1.0\r\n\r\n")
    r = await c.response()
    assert r.header("transfer-encoding") is None
    assert r.body == b"abcd"


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
async def test_no_body_framing(
    serve: ServeFactory, client: Connect, method: str, status: int
) -> None:
    """HEAD, 204 and 304 get no body and no chunked framing; a given Content-Length is kept."""

    async def handler(request: ClientRequest, reply: Reply) -> None:
        headers = (("Content-Length", "10"),) if status != 204 else ()
        await reply.start(status, "", headers)
        await reply.write(b"0123456789")
        await reply.end()

    s = await serve(handler)
    c = await client(s.port)
    for _ in range(2):  # and the connection stays usable
        await c.send(f"{method} / HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        r = await c.response(head_only=True)
        assert r.status == status
        assert r.header("transfer-encoding") is None
        assert r.header("content-length") == (None if status == 204 else "10")
    await c.send(b"XX")
    assert not await c.closed(0.2)


async def test_expect_continue_only_when_the_body_is_read(
    serve: ServeFactory, client: Connect
) -> None:
    """100 Continue is sent when the handler reads the body, never before an answer
    that does not read it (e.g. a limit); then the connection closes."""

    async def maybe_read(request: ClientRequest, reply: Reply) -> None:
        if request.target == "/limit":
            await reply.send(413, "", (), b"too big")
            return
        body = await request.read()
        await reply.send(200, "OK", (), body)

    s = await serve(maybe_read)
    c = await client(s.port)
    await c.send(
        b"POST /ok HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    )
    r = await c.response()
    assert r.status == 100
    await c.send(b"abc")
    r = await c.response()
    assert (r.status, r.body) == (200, b"abc")

    c = await client(s.port)
    await c.send(b"POST /limit HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                 b"Content-Length: 3\r\n\r\n")  # fmt: skip
    r = await c.response()
    assert r.status == 413
    assert r.header("connection") == "close"
    assert await c.closed()


async def test_ambiguous_framing_rejected(serve: ServeFactory, client: Connect) -> None:
    """CL+TE, two Content-Lengths, an unsupported coding, two Hosts: 400, closed,
    and the handler sees a rejection, never a request to forward."""
    cases = [
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
        b"POST / HTTP/1.1\r\nUpgrade: x\r\nConnection: upgrade\r\nContent-Length: 5\r\n\r\nhello",
    ]
    s = await serve()
    for raw in cases:
        c = await client(s.port)
        await c.send(raw)
        r = await c.response()
        assert r.status == 400, raw
        assert await c.closed(), raw
    assert all(q.rejection is not None and q.rejection.status == 400 for q in s.seen)
    assert len(s.seen) == len(cases)


async def test_unsupported_version_gets_505(serve: ServeFactory, client: Connect) -> None:
    s = await serve()
    c = await client(s.port)
    await c.send(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n")
    assert (await c.response()).status == 505


async def test_request_line_over_limit_gets_414(serve: ServeFactory, client: Connect) -> None:
    s = await serve(max_header_bytes=1024)
    c = await client(s.port)
    await c.send(b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    r = await c.response()
    assert r.status == 414
    assert s.seen[0].rejection is not None
    assert s.seen[0].rejection.kind == "uri-too-long"


async def test_header_section_over_limit_gets_431(serve: ServeFactory, client: Connect) -> None:
    """The whole header section counts: many small fields over the limit get 431."""
    s = await serve(max_header_bytes=1024)
    c = await client(s.port)
    fields = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 40) for i in range(40))  # ~2 KiB
    await c.send(b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n")
    assert (await c.response()).status == 431
    c = await client(s.port)
    few = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 40) for i in range(15))  # ~750 B
    await c.send(b"GET / HTTP/1.1\r\nHost: h\r\n" + few + b"\r\n")
    assert (await c.response()).status == 200


async def test_endless_header_value_is_bounded(serve: ServeFactory, client: Connect) -> None:
    """A header value that never ends gets 431 once far over the limit (not memory)."""
    s = await serve(max_header_bytes=1024)
    c = await client(s.port)
    await c.send(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: ")
    for _ in range(40):
        await c.send(b"b" * 1024)
    assert (await c.response()).status == 431


async def test_head_deadline(serve: ServeFactory, client: Connect) -> None:
    """A head that trickles in gets 408 after client_header; a connection that
    sends nothing is closed silently."""
    s = await serve(client_header=0.3)
    c = await client(s.port)
    t0 = time.monotonic()
    await c.send(b"GET / HTTP/1.1\r\n")
    for _ in range(3):
        await asyncio.sleep(0.1)
        await c.send(b"X-A: b\r\n")
    r = await c.response()
    assert r.status == 408
    assert 0.3 <= time.monotonic() - t0 < 2.0
    assert await c.closed()
    c = await client(s.port)
    t0 = time.monotonic()
    assert await c.closed()
    assert 0.3 <= time.monotonic() - t0 < 2.0
    assert len(s.seen) == 1


async def test_keep_alive_idle_timeout(serve: ServeFactory, client: Connect) -> None:
    s = await serve(keep_alive=0.3)
    c = await client(s.port)
    t0 = time.monotonic()  # the idle time starts once the server wrote its answer, after this
    await c.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    await c.response()
    assert await c.closed()
    # the event loop may run a timer up to its clock resolution early
    assert 0.3 - 0.01 <= time.monotonic() - t0 < 2.0


async def _read_all(request: ClientRequest) -> int:
    n = 0
    while chunk := await request.read():
        n += len(chunk)
    return n


async def test_client_read_timeout_and_body_limit(serve: ServeFactory, client: Connect) -> None:
    """A pause longer than client_read and a body over max_request_body reach the
    handler as ClientBodyError with their kind."""
    kinds: list[str] = []

    async def handler(request: ClientRequest, reply: Reply) -> None:
        try:
            await _read_all(request)
        except ClientBodyError as exc:
            kinds.append(exc.kind)
            await reply.send(408 if exc.kind == "client_read_timeout" else 413, "", (), b"")
            return
        await reply.send(200, "OK", (), b"")

    s = await serve(handler, client_read=0.2, max_request_body=1000)
    c = await client(s.port)
    await c.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
    r = await c.response()
    assert r.status == 408
    assert await c.closed()
    c = await client(s.port)
    await c.send(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(3):
        await c.send(b"190\r\n" + b"z" * 400 + b"\r\n")
    r = await c.response()
    assert r.status == 413
    assert kinds == ["client_read_timeout", "body_too_large"]


async def test_client_gone_mid_body(serve: ServeFactory, client: Connect) -> None:
    kinds: list[str] = []

    async def handler(request: ClientRequest, reply: Reply) -> None:
        try:
            await _read_all(request)
        except ClientBodyError as exc:
            kinds.append(exc.kind)
        ok = await reply.send(400, "", (), b"")
        kinds.append(f"sent={ok}")

    s = await serve(handler)
    c = await client(s.port)
    await c.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc")
    await asyncio.sleep(0.05)
    c.writer.transport.abort()
    for _ in range(50):
        if len(kinds) == 2:
            break
        await asyncio.sleep(0.02)
    assert kinds == ["client_disconnected", "sent=False"]


async def test_request_body_back_pressure(serve: ServeFactory, client: Connect) -> None:
    """While the handler does not read, the server stops reading: buffered body
    stays near the high-water mark, and everything arrives once it reads."""
    from auditproxy.http1.cycle import BODY_HIGH_WATER

    gate = asyncio.Event()
    buffered: list[int] = []

    async def handler(request: ClientRequest, reply: Reply) -> None:
        await gate.wait()
        buffered.append(request.buffered)  # type: ignore[attr-defined]
        n = await _read_all(request)
        await reply.send(200, "OK", (), str(n).encode())

    s = await serve(handler, max_request_body=64 * 1024**2)
    c = await client(s.port)
    total = 32 * 1024**2
    await c.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % total)
    block = b"q" * 65536

    async def sender() -> None:
        for _ in range(total // len(block)):
            c.writer.write(block)
            await c.writer.drain()

    task = asyncio.create_task(sender())
    await asyncio.sleep(0.5)
    assert not task.done()  # the socket buffers filled: the server is not reading
    gate.set()
    r = await c.response(timeout=30)
    await task
    assert r.body == str(total).encode()
    assert buffered[0] <= BODY_HIGH_WATER + 256 * 1024


async def test_response_write_waits_for_a_slow_client(serve: ServeFactory, client: Connect) -> None:
    """Reply.write waits while the client does not read (write-buffer limits)."""
    from auditproxy.http1.server import WRITE_HIGH_WATER

    progress: list[int] = []

    async def handler(request: ClientRequest, reply: Reply) -> None:
        await reply.start(200, "OK", (("Content-Length", str(64 * 1024**2)),))
        for i in range(1024):
            await reply.write(b"w" * 65536)
            progress.append(i)
        await reply.end()

    s = await serve(handler)
    c = await client(s.port)
    await c.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    await asyncio.sleep(0.5)
    written = len(progress) * 65536
    assert written < 16 * 1024**2  # held back well before 64 MiB
    conn = next(iter(s.server.connections))
    assert conn.transport is not None
    assert conn.transport.get_write_buffer_size() <= WRITE_HIGH_WATER + 65536
    r = await c.response(timeout=30)
    assert len(r.body) == 64 * 1024**2


async def test_max_connections_back_pressure(serve: ServeFactory, client: Connect) -> None:
    """Beyond max_connections a connection is not read until another one closes."""
    s = await serve(max_connections=2)
    a, b, third = await client(s.port), await client(s.port), await client(s.port)
    for c in (a, b):
        await c.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert (await c.response()).status == 200
    await third.send(b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n")
    with pytest.raises(TimeoutError):
        await third.response(timeout=0.3)
    await a.close()
    r = await third.response()
    assert r.header("x-target") == "/3"


async def test_reply_framing_given_content_length_kept(
    serve: ServeFactory, client: Connect
) -> None:
    """A streamed reply with a Content-Length keeps it; a short body aborts the connection."""

    async def handler(request: ClientRequest, reply: Reply) -> None:
        await reply.start(
            200, "OK", (("Content-Length", "6"), ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"))
        )
        await reply.write(b"abc")
        if request.target == "/full":
            await reply.write(b"def")
        await reply.end()

    s = await serve(handler)
    c = await client(s.port)
    await c.send(b"GET /full HTTP/1.1\r\nHost: h\r\n\r\n")
    r = await c.response()
    assert (r.body, r.header("transfer-encoding")) == (b"abcdef", None)
    assert r.header("date") == "Mon, 01 Jan 2024 00:00:00 GMT"
    await c.send(b"GET /short HTTP/1.1\r\nHost: h\r\n\r\n")
    with pytest.raises(asyncio.IncompleteReadError):
        await c.response()


async def test_request_fields(serve: ServeFactory, client: Connect) -> None:
    """Target, decoded path, host, version and remote as the handler sees them."""
    s = await serve()
    c = await client(s.port)
    await c.send(b"GET /a%20b/c?q=%20 HTTP/1.1\r\nHost: api.example\r\n\r\n")
    await c.response()
    await c.send(b"GET http://api.example/x%2Fy?z HTTP/1.1\r\nHost: api.example\r\n\r\n")
    await c.response()
    first, second = s.seen
    assert (first.target, first.path, first.host, first.version) == (
        "/a%20b/c?q=%20",
        "/a b/c",
        "api.example",
        "1.1",
    )
    assert first.remote == "127.0.0.1"
    assert second.path == "/x/y"


async def test_shutdown_lets_a_request_finish(serve: ServeFactory, client: Connect) -> None:
    """Shutdown closes idle connections at once and waits for one in progress."""

    async def slow(request: ClientRequest, reply: Reply) -> None:
        await asyncio.sleep(0.3)
        await reply.send(200, "OK", (), b"done")

    s = await serve(slow)
    idle, busy = await client(s.port), await client(s.port)
    await idle.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    await idle.response()
    await busy.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    await asyncio.sleep(0.05)
    stop = asyncio.create_task(s.server.shutdown(5))
    assert await idle.closed(1)
    r = await busy.response()
    assert r.body == b"done"
    await stop


async def test_handler_connection_close_is_honoured_once(
    serve: ServeFactory, client: Connect
) -> None:
    """A handler's Connection: close closes the connection, announced in one field."""

    async def closing(request: ClientRequest, reply: Reply) -> None:
        await reply.send(400, "", (("Connection", "close"),), b"no")

    s = await serve(closing)
    c = await client(s.port)
    await c.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    r = await c.response()
    assert [v for k, *v in r.headers if k.lower() == "connection"] == [["close"]]
    assert await c.closed()
