"""A large body in each direction through the proxy in bounded memory.

The suite streams 256 MiB each way; the long run (1 GiB each way, issue 10's
figure) is opt-in::

    AUDITPROXY_LOAD_TESTS=1 .venv/bin/pytest tests/proxy/test_streaming_memory.py

Proxy, upstream and client share this process, so the bound covers all three."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from .conftest import ProxyFactory

MIB = 1024 * 1024
SIZE = (1024 if os.environ.get("AUDITPROXY_LOAD_TESTS") == "1" else 256) * MIB
BOUND = 50 * MIB  # RSS the transfer may add
BLOCK = b"m" * (256 * 1024)


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def _download(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.content_length = SIZE
    await resp.prepare(request)
    for _ in range(SIZE // len(BLOCK)):
        await resp.write(BLOCK)
    await resp.write_eof()
    return resp


async def _upload(request: web.Request) -> web.Response:
    n = 0
    async for chunk in request.content.iter_any():
        n += len(chunk)
    return web.Response(text=str(n))


@pytest.fixture(name="bulk")
async def bulk_fixture(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> str:
    app = web.Application(client_max_size=2 * SIZE)
    app.router.add_get("/down", _download)
    app.router.add_post("/up", _upload)
    server = await aiohttp_server(app, host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}"


@pytest.mark.slow
async def test_large_bodies_both_ways_in_bounded_memory(
    bulk: str, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(bulk, limits__max_request_body=f"{2 * SIZE // MIB}MiB")
    base = _rss()
    peak = base

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, _rss())
            await asyncio.sleep(0.05)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(SIZE // len(BLOCK)):
            yield BLOCK

    watcher = asyncio.create_task(watch())
    try:
        async with aiohttp.ClientSession() as s:
            got = 0
            async with s.get(f"{proxy.url}/down") as r:
                async for chunk in r.content.iter_any():
                    got += len(chunk)
            async with s.post(f"{proxy.url}/up", data=body()) as r:
                sent = int(await r.text())
    finally:
        watcher.cancel()
    assert got == SIZE
    assert sent == SIZE
    assert peak - base < BOUND, f"RSS grew by {(peak - base) / MIB:.0f} MiB"
