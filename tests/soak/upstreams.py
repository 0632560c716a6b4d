"""The soak's upstreams on 127.0.0.1, each counting what it received by request id.

- the sample orders API (``auditproxy.sample_upstream``), with a middleware that
  counts every request it receives by its ``X-Request-Id``;
- a small raw asyncio upstream whose path says how it misbehaves (``FLAKY``);
- a "dead" address: a port that was bound once and closed, so connecting is refused.

The proxy forwards the client's ``X-Request-Id``, so the soak can join what the
client sent, what each upstream saw and what the proxy recorded, id by id.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate

from aiohttp import web

from auditproxy.sample_upstream import make_sample_app

# What the flaky upstream does, by the path segment after /flaky/:
#   ok       a compliant 200 (JSON, Date)
#   slow     the same after ``SLOW_SECONDS`` (within the proxy's response_headers)
#   hang     reads the request and never answers (the proxy times out: 504)
#   reset    reads the request and resets the connection (502, kind reset)
#   garbage  answers a malformed status line (502, kind protocol)
#   midbody  sends a chunked 200 head and one chunk, then resets (the proxy has
#            started the reply, so it aborts the client connection)
FLAKY = ("ok", "slow", "hang", "reset", "garbage", "midbody")
SLOW_SECONDS = 0.3


@dataclass
class Seen:
    """Request ids an upstream received, with how often each came."""

    ids: collections.Counter[str] = field(default_factory=collections.Counter)
    without_id: int = 0

    def add(self, request_id: str | None) -> None:
        if request_id:
            self.ids[request_id] += 1
        else:
            self.without_id += 1

    @property
    def received(self) -> int:
        return sum(self.ids.values()) + self.without_id


@dataclass
class Upstreams:
    sample_url: str
    flaky_url: str
    dead_url: str
    sample: Seen
    flaky: Seen
    close: Callable[[], Awaitable[None]]


def _counting(seen: Seen) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def count(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        seen.add(request.headers.get("X-Request-Id"))
        return await handler(request)

    return count


def _date() -> str:
    return formatdate(usegmt=True)


def _ok() -> bytes:
    body = b'{"ok":true}'
    return (
        f"HTTP/1.1 200 OK\r\nDate: {_date()}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str | None, int] | None:
    """(path, X-Request-Id, Content-Length) of the next request; its body is read."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    target = lines[0].split(" ")[1] if lines[0].count(" ") >= 2 else "/"
    fields = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    length = int(fields.get("content-length", "0") or 0)
    if length:
        await reader.readexactly(length)
    return target.split("?")[0], fields.get("x-request-id"), length


async def _flaky_conn(seen: Seen, hang: float, r: asyncio.StreamReader,
                      w: asyncio.StreamWriter) -> None:  # fmt: skip
    try:
        while (req := await _read_head(r)) is not None:
            path, request_id, _ = req
            seen.add(request_id)
            what = path.rsplit("/", 1)[-1]
            if what == "slow":
                await asyncio.sleep(SLOW_SECONDS)
            if what in ("ok", "slow"):
                w.write(_ok())
                await w.drain()
                continue
            if what == "hang":
                await asyncio.sleep(hang)
            elif what == "garbage":
                w.write(b"HTTP/1.1 two hundred OK\r\nContent-Length: 0\r\n\r\n")
                await w.drain()
            elif what == "midbody":
                w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: "
                        + _date().encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + b"5\r\n[1,2,\r\n")  # fmt: skip
                await w.drain()
                await asyncio.sleep(0.05)
            w.transport.abort()
            return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        w.close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound once, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def start_upstreams(hang_seconds: float) -> Upstreams:
    """Both upstreams listening on free ports; ``close()`` stops them."""
    sample, flaky = Seen(), Seen()
    app = make_sample_app()
    app.middlewares.append(_counting(sample))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sample_port = runner.addresses[0][1]
    conns: set[asyncio.Task[None]] = set()

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        conns.add(task)
        try:
            await _flaky_conn(flaky, hang_seconds, r, w)
        finally:
            conns.discard(task)

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    flaky_port = server.sockets[0].getsockname()[1]

    async def close() -> None:
        server.close()
        for t in list(conns):
            t.cancel()
        with contextlib.suppress(Exception):
            await server.wait_closed()
        await runner.cleanup()

    return Upstreams(
        sample_url=f"http://127.0.0.1:{sample_port}",
        flaky_url=f"http://127.0.0.1:{flaky_port}",
        dead_url=f"http://127.0.0.1:{closed_port()}",
        sample=sample,
        flaky=flaky,
        close=close,
    )
