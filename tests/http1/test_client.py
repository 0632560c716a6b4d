"""The upstream side (``auditproxy.http1.client``) against raw asyncio servers on
127.0.0.1: framing, pool reuse and not-reuse, the stale-connection retry, back-
pressure and every error kind."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from auditproxy.http1.client import BODY_HIGH_WATER, UpstreamPool
from auditproxy.wire import ClientBodyError, UpstreamError

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Origin:
    """A raw upstream running ``script`` for every connection."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def head(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        return head


@pytest.fixture(name="start")
async def origin_fixture() -> AsyncIterator[Callable[[Script], Awaitable[Origin]]]:
    made: list[Origin] = []

    async def start(script: Script) -> Origin:
        origin = Origin()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            origin.connections += 1
            try:
                await script(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        origin.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        made.append(origin)
        return origin

    yield start
    for o in made:
        assert o.server is not None
        o.server.close()


@pytest.fixture(name="pool")
async def pool_fixture() -> AsyncIterator[UpstreamPool]:
    pool = UpstreamPool(connect_timeout=1.0)
    yield pool
    await pool.close()


Start = Callable[[Script], Awaitable[Origin]]


def keep_answering(answer: bytes, origin_ref: list[Origin]) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await origin_ref[0].head(reader)
            writer.write(answer)
            await writer.drain()

    return script


async def _keep(start: Start, answer: bytes) -> Origin:
    ref: list[Origin] = []
    origin = await start(keep_answering(answer, ref))
    ref.append(origin)
    return origin


async def test_pool_reuses_a_connection_read_to_the_end(start: Start, pool: UpstreamPool) -> None:
    origin = await _keep(start, OK)
    for _ in range(3):
        r = await pool.send(origin.base, "GET", "/x", (("Host", "u"),), None)
        assert (r.status, r.reason, await r.read_all()) == (200, "OK", b"ok")
        r.release()
    assert origin.connections == 1
    assert pool.opened == 1
    assert origin.requests[0].startswith(b"GET /x HTTP/1.1\r\nHost: u\r\n")


async def test_unread_body_is_not_reused(start: Start, pool: UpstreamPool) -> None:
    origin = await _keep(
        start, b"HTTP/1.1 200 OK\r\nContent-Length: 4000000\r\n\r\n" + b"a" * 4000000
    )
    r = await pool.send(origin.base, "GET", "/", (), None)
    assert await r.read()
    r.release()
    r = await pool.send(origin.base, "GET", "/", (), None)
    assert len(await r.read_all()) == 4000000
    r.release()
    assert origin.connections == 2
    r = await pool.send(origin.base, "GET", "/", (), None)
    r.release()
    assert origin.connections == 2


async def test_connection_close_is_not_reused(start: Start, pool: UpstreamPool) -> None:
    origin = await _keep(
        start, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    )
    for _ in range(2):
        r = await pool.send(origin.base, "GET", "/", (), None)
        assert await r.read_all() == b"ok"
        r.release()
    assert origin.connections == 2
    assert pool.idle_count() == 0


async def test_idle_connections_expire(start: Start) -> None:
    origin = await _keep(start, OK)
    pool = UpstreamPool(idle_timeout=0.2)
    try:
        r = await pool.send(origin.base, "GET", "/", (), None)
        await r.read_all()
        r.release()
        assert pool.idle_count() == 1
        await asyncio.sleep(0.5)
        assert pool.idle_count() == 0
    finally:
        await pool.close()


async def _one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer the first request of a connection with keep-alive; close on the
    second one without answering (as an upstream whose idle timer fired)."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(OK)
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")


async def test_stale_pooled_connection_retried_once_when_idempotent(
    start: Start, pool: UpstreamPool
) -> None:
    """A pooled connection closed before any response byte: a GET is sent again on
    a fresh connection; a POST is not (it gets reset)."""
    origin = await start(_one_per_connection)
    r = await pool.send(origin.base, "GET", "/", (), None)
    await r.read_all()
    r.release()
    r = await pool.send(origin.base, "GET", "/", (), None)
    assert await r.read_all() == b"ok"
    r.release()
    assert origin.connections == 2
    with pytest.raises(UpstreamError) as info:
        await pool.send(origin.base, "POST", "/", (), b"x")
    assert info.value.kind == "reset"
    assert origin.connections == 2


async def test_refused_connect(pool: UpstreamPool) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(UpstreamError) as info:
        await pool.send(f"http://127.0.0.1:{port}", "GET", "/", (), None)
    assert info.value.kind == "connect"


async def test_connect_timeout() -> None:
    """A listener whose accept queue is full drops the SYN: connect times out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            f = socket.socket()
            f.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                f.connect(("127.0.0.1", port))
            fillers.append(f)
        pool = UpstreamPool(connect_timeout=0.3)
        with pytest.raises(UpstreamError) as info:
            await pool.send(f"http://127.0.0.1:{port}", "GET", "/", (), None)
        assert info.value.kind == "connect"
        assert "timed out" in info.value.detail
    finally:
        for f in fillers:
            f.close()
        sock.close()


async def test_reset_mid_body(start: Start, pool: UpstreamPool) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10)
        await writer.drain()

    origin = await start(cut)
    r = await pool.send(origin.base, "GET", "/", (), None)
    with pytest.raises(UpstreamError) as info:
        await r.read_all()
    assert info.value.kind == "reset"
    r.release()


async def test_closed_before_the_head_is_reset(start: Start, pool: UpstreamPool) -> None:
    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")

    origin = await start(close)
    with pytest.raises(UpstreamError) as info:
        await pool.send(origin.base, "GET", "/", (), None)
    assert info.value.kind == "reset"


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"NOT HTTP\r\n\r\n",
    ],
)
async def test_malformed_response_is_protocol(
    start: Start, pool: UpstreamPool, answer: bytes
) -> None:
    async def bad(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        await asyncio.sleep(0.5)

    origin = await start(bad)

    async def exchange() -> bytes:
        r = await pool.send(origin.base, "GET", "/", (), None)
        return await r.read_all()

    with pytest.raises(UpstreamError) as info:
        await exchange()
    assert info.value.kind == "protocol"


@pytest.mark.parametrize(
    ("method", "answer"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5000\r\n\r\n"),
    ],
)
async def test_responses_without_a_body(
    start: Start, pool: UpstreamPool, method: str, answer: bytes
) -> None:
    origin = await _keep(start, answer)
    r = await pool.send(origin.base, method, "/", (), None)
    async with asyncio.timeout(2):
        assert await r.read_all() == b""
    r.release()


async def test_chunked_close_delimited_and_interim(start: Start, pool: UpstreamPool) -> None:
    """A chunked body, a 100 Continue before the final head, a body ended by close."""
    answers = iter([
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
    ])  # fmt: skip

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()

    origin = await start(script)
    r = await pool.send(origin.base, "GET", "/", (), None)
    assert (r.status, r.content_length, await r.read_all()) == (200, None, b"abcde")
    r.release()
    r = await pool.send(origin.base, "GET", "/", (), None)
    assert await r.read_all() == b"until the end"
    r.release()


async def _body(parts: list[bytes], fail: bool = False) -> AsyncIterator[bytes]:
    for p in parts:
        await asyncio.sleep(0)
        yield p
    if fail:
        raise ClientBodyError("client_read_timeout")


async def test_request_body_framing(start: Start, pool: UpstreamPool) -> None:
    """Bytes get a Content-Length; a stream keeps the client's Content-Length, else chunked."""
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if b"chunked" in head:
                body = await reader.readuntil(b"0\r\n\r\n")
            else:
                n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                body = await reader.readexactly(n)
            seen.append(head + body)
            writer.write(OK)
            await writer.drain()

    origin = await start(record)
    cases: list[tuple[bytes | AsyncIterator[bytes], tuple[tuple[str, str], ...]]] = [
        (b"abc", ()),
        (_body([b"ab", b"cd"]), (("Content-Length", "4"),)),
        (_body([b"ab", b"cd"]), ()),
    ]
    for body, headers in cases:
        r = await pool.send(origin.base, "POST", "/p", headers, body)
        await r.read_all()
        r.release()
    assert seen[0].endswith(b"Content-Length: 3\r\n\r\nabc")
    assert seen[1].endswith(b"Content-Length: 4\r\n\r\nabcd")
    assert seen[2].endswith(b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n")
    assert origin.connections == 1


async def test_client_body_error_surfaces(start: Start, pool: UpstreamPool) -> None:
    """A client-side body failure before the head arrives fails the attempt, and
    the connection is not reused."""

    async def wait(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    origin = await start(wait)
    with pytest.raises(UpstreamError) as info:
        await pool.send(origin.base, "POST", "/", (), _body([b"x"], fail=True))
    assert "client_read_timeout" in info.value.detail
    assert pool.idle_count() == 0


async def test_response_back_pressure(start: Start, pool: UpstreamPool) -> None:
    """A consumer that does not read holds the upstream back: a 32 MiB body is
    buffered only up to about the high-water mark."""
    total = 32 * 1024**2

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        block = b"b" * 65536
        for _ in range(total // len(block)):
            writer.write(block)
            await writer.drain()

    origin = await start(big)
    r = await pool.send(origin.base, "GET", "/", (), None)
    await asyncio.sleep(0.5)
    assert r.buffered <= BODY_HIGH_WATER + 256 * 1024
    n = 0
    while chunk := await r.read():
        n += len(chunk)
    assert n == total
    r.release()


async def test_cancelled_read_closes_the_connection(start: Start, pool: UpstreamPool) -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
        await writer.drain()
        await asyncio.sleep(5)

    origin = await start(stall)
    r = await pool.send(origin.base, "GET", "/", (), None)
    assert await r.read() == b"ab"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await r.read()
    r.release()
    assert pool.idle_count() == 0


@pytest.fixture(name="tls_cert")
def tls_cert_fixture(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed key and certificate for localhost (openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


async def test_https_upstream(tls_cert: tuple[Path, Path]) -> None:
    """An https:// base is reached over TLS, verified with the context given, and pooled."""
    key, cert = tls_cert
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cafile=str(cert))
    pool = UpstreamPool(ssl_context=client_ctx)
    try:
        for _ in range(2):
            r = await pool.send(f"https://localhost:{port}", "GET", "/", (), None)
            assert await r.read_all() == b"ok"
            r.release()
        assert connections == 1
        with pytest.raises(UpstreamError) as info:  # a certificate nobody vouches for
            await UpstreamPool().send(f"https://localhost:{port}", "GET", "/", (), None)
        assert info.value.kind == "connect"
    finally:
        await pool.close()
        server.close()
