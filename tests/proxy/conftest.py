"""Fixtures for the proxy tests: real upstream servers on 127.0.0.1, the real proxy
(both servers started by ``auditproxy.server.start``), raw-socket helpers."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from auditproxy.runtime import ProxyContext
from auditproxy.server import Serving, start
from auditproxy.settings import Settings, load_settings

GZIP_BODY = gzip.compress(b'{"hello": "world"}' * 50)
BIG_CHUNK = 64 * 1024


@dataclasses.dataclass
class Upstream:
    server: TestServer
    seen: list[dict[str, Any]]
    big_done: asyncio.Event
    upload_first_chunk: asyncio.Event

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


SEEN = web.AppKey("seen", list)
BIG_DONE = web.AppKey("big_done", asyncio.Event)
UPLOAD_FIRST = web.AppKey("upload_first_chunk", asyncio.Event)


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    request.app[SEEN].append(
        {"method": request.method, "headers": list(request.headers.items()), "body": body}
    )
    return web.Response(body=body, content_type="application/octet-stream")


async def _headers(request: web.Request) -> web.Response:
    request.app[SEEN].append({"method": request.method, "headers": list(request.headers.items())})
    return web.json_response({"headers": list(request.headers.items())})


async def _bytes(request: web.Request) -> web.Response:
    n = int(request.match_info["n"])
    return web.Response(body=bytes(i % 251 for i in range(n)), content_type="text/plain")


async def _chunked(request: web.Request) -> web.StreamResponse:
    n = int(request.match_info["n"])
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for i in range(n):
        await resp.write(f"chunk-{i};".encode())
    await resp.write_eof()
    return resp


async def _big(request: web.Request) -> web.StreamResponse:
    """64 MiB, generated on the fly; sets ``big_done`` once everything is written."""
    mib = int(request.match_info["mib"])
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    resp.content_length = mib * 1024 * 1024
    await resp.prepare(request)
    chunk = b"x" * BIG_CHUNK
    for _ in range(mib * 16):
        await resp.write(chunk)
    request.app[BIG_DONE].set()
    await resp.write_eof()
    return resp


async def _upload(request: web.Request) -> web.Response:
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
        request.app[UPLOAD_FIRST].set()
    return web.json_response({"received": total})


async def _gzip(request: web.Request) -> web.Response:
    return web.Response(
        body=GZIP_BODY, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
    )


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "2")))
    return web.Response(text="slow done", content_type="text/plain")


async def _status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="x", content_type="text/plain")


@pytest.fixture(name="upstream")
async def upstream_fixture(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> Upstream:
    app = web.Application(client_max_size=1024**3)
    seen: list[dict[str, Any]] = []
    app[SEEN] = seen
    app[BIG_DONE] = big_done = asyncio.Event()
    app[UPLOAD_FIRST] = first = asyncio.Event()
    app.router.add_route("*", "/echo", _echo)
    app.router.add_route("*", "/headers", _headers)
    app.router.add_get("/bytes/{n}", _bytes)
    app.router.add_get("/chunked/{n}", _chunked)
    app.router.add_get("/big/{mib}", _big)
    app.router.add_post("/upload", _upload)
    app.router.add_get("/gzip", _gzip)
    app.router.add_get("/slow", _slow)
    app.router.add_route("*", "/status/{code}", _status)
    server = await aiohttp_server(app, host="127.0.0.1")
    return Upstream(server, seen, big_done, first)


RawHandler = Callable[[bytes], bytes]


@dataclasses.dataclass
class RawUpstream:
    """A raw asyncio HTTP server: reads one request head (and Content-Length body)
    and answers with exactly the bytes a test chose; records what it received."""

    port: int
    received: list[bytes]
    responses: dict[str, bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(name="raw_upstream")
async def raw_upstream_fixture() -> AsyncIterator[RawUpstream]:
    received: list[bytes] = []
    responses: dict[str, bytes] = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            received.append(head)
            path = head.split(b" ", 2)[1].decode()
            default = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            writer.write(responses.get(path, default).replace(b"{method}", head.split(b" ")[0]))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield RawUpstream(port, received, responses)
    server.close()
    await server.wait_closed()


@dataclasses.dataclass
class Proxy:
    ctx: ProxyContext
    registry: CollectorRegistry
    host: str
    port: int
    admin_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.registry.get_sample_value(name, labels or {}) or 0.0


ProxyFactory = Callable[..., Awaitable[Proxy]]


@pytest.fixture(name="make_proxy")
async def make_proxy_fixture() -> AsyncIterator[ProxyFactory]:
    servings: list[Serving] = []

    async def make(upstream: str, **flags: object) -> Proxy:
        base: dict[str, object] = {
            "upstream": upstream,
            "listen": "127.0.0.1:0",
            "admin": "127.0.0.1:0",
        }
        base.update({k.replace("__", "."): v for k, v in flags.items()})
        settings: Settings = load_settings(None, env={}, flags=base)
        registry = CollectorRegistry()
        serving = await start(settings, registry=registry)
        servings.append(serving)
        host, port = serving.address
        _, admin_port = serving.admin_address
        return Proxy(serving.ctx, registry, host, port, admin_port)

    yield make
    for s in reversed(servings):
        await s.close()


@pytest.fixture(name="proxy")
async def proxy_fixture(upstream: Upstream, make_proxy: ProxyFactory) -> Proxy:
    return await make_proxy(upstream.url, limits__max_request_body="128MiB")


async def raw_request(port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it
    (or, for keep-alive responses, until one full Content-Length body arrived)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    out = b""
    try:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                out += chunk
                if _complete(out):
                    break
    finally:
        writer.close()
    return out


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            return body.endswith(b"0\r\n\r\n")
    return False


def head_lines(raw: bytes) -> list[str]:
    return raw.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")


def header_names(raw: bytes) -> set[str]:
    return {line.split(":", 1)[0].strip().lower() for line in head_lines(raw)[1:]}
