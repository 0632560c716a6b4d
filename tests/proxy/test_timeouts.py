"""Upstream timeouts (SPEC §5) enforced by the shared deadline sweeper: response
head, idle body and total, on both the small (read whole) and the streamed path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from auditproxy.deadlines import Deadlines

from .conftest import ProxyFactory

STALL = 5.0  # how long the upstream stalls; every timeout under test is far shorter


async def _stall_body(request: web.Request) -> web.StreamResponse:
    """Announces ``size`` bytes, sends ``sent`` of them, then stalls."""
    size, sent = int(request.query["size"]), int(request.query["sent"])
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    resp.content_length = size
    await resp.prepare(request)
    await resp.write(b"a" * sent)
    await asyncio.sleep(STALL)
    return resp


async def _dribble(request: web.Request) -> web.StreamResponse:
    """A chunked body with a small chunk every 50 ms for up to 5 s."""
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for _ in range(100):
        await resp.write(b"tick;")
        await asyncio.sleep(0.05)
    await resp.write_eof()
    return resp


async def _upload(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response({"received": len(body)})


async def _slow_head(request: web.Request) -> web.Response:
    await asyncio.sleep(STALL)
    return web.Response(text="late")


@pytest.fixture(name="stalling")
async def stalling_fixture(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> str:
    app = web.Application()
    app.router.add_get("/stall", _stall_body)
    app.router.add_get("/dribble", _dribble)
    app.router.add_post("/upload", _upload)
    app.router.add_get("/slow", _slow_head)
    server = await aiohttp_server(app, host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}"


def _timeouts(proxy_sample: Callable[[str, dict[str, str]], float], route: str) -> float:
    return proxy_sample("auditproxy_upstream_errors_total", {"route": route, "kind": "timeout"})


async def test_no_head_in_time_gives_504_not_early(stalling: str, make_proxy: ProxyFactory) -> None:
    """A missing response head times out after response_headers, not before, as a 504."""
    proxy = await make_proxy(stalling, timeouts__response_headers="300ms")
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.url}/slow") as r:
        doc = await r.json(content_type=None)
    elapsed = time.monotonic() - t0
    assert r.status == 504
    assert doc["type"].endswith("upstream-timeout")
    assert "no response head within 0.3s" in doc["detail"]
    assert 0.3 <= elapsed < 2.0
    assert _timeouts(proxy.sample, "/slow") == 1


async def test_small_body_idle_gives_504(stalling: str, make_proxy: ProxyFactory) -> None:
    """A small body that stalls longer than idle before it is complete gives a 504."""
    proxy = await make_proxy(stalling, timeouts__idle="300ms")
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.url}/stall?size=1000&sent=10") as r:
        doc = await r.json(content_type=None)
    elapsed = time.monotonic() - t0
    assert r.status == 504
    assert "paused for more than 0.3s" in doc["detail"]
    assert 0.3 <= elapsed < 2.0
    assert _timeouts(proxy.sample, "/stall") == 1


async def test_streamed_body_idle_aborts_client(stalling: str, make_proxy: ProxyFactory) -> None:
    """A streamed body that stalls longer than idle aborts the client connection."""
    proxy = await make_proxy(stalling, timeouts__idle="300ms")
    t0 = time.monotonic()
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{proxy.url}/stall?size=1000000&sent=70000") as r,
    ):
        assert r.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()
    assert 0.3 <= time.monotonic() - t0 < 2.0
    assert _timeouts(proxy.sample, "/stall") == 1


async def test_total_limits_a_body_that_keeps_coming(
    stalling: str, make_proxy: ProxyFactory
) -> None:
    """A body that never pauses longer than idle is still cut off at the total timeout."""
    proxy = await make_proxy(stalling, timeouts__idle="1s", timeouts__total="500ms")
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.url}/dribble") as r:
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()
    assert 0.5 <= time.monotonic() - t0 < 3.0
    assert _timeouts(proxy.sample, "/dribble") == 1


async def test_head_wait_starts_after_the_request_body(
    stalling: str, make_proxy: ProxyFactory
) -> None:
    """A slow upload longer than response_headers is fine: the head wait starts once it is sent."""
    proxy = await make_proxy(stalling, timeouts__response_headers="300ms")

    async def slow_body() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 100
            await asyncio.sleep(0.15)

    async with aiohttp.ClientSession() as s, s.post(f"{proxy.url}/upload", data=slow_body()) as r:
        doc = await r.json()
    assert r.status == 200
    assert doc == {"received": 400}
    assert _timeouts(proxy.sample, "/upload") == 0


class _Item:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def check(self, now: float) -> None:
        self.calls += 1
        if self.fail:
            raise RuntimeError("broken")


async def test_sweeper_checks_items_and_stops_when_idle() -> None:
    """Items are checked each interval; a failing one is dropped; nothing watched, no timer."""
    d = Deadlines(interval=0.02)
    good, bad = _Item(), _Item(fail=True)
    d.add(good)
    d.add(bad)
    await asyncio.sleep(0.15)
    assert good.calls >= 3
    assert bad.calls == 1
    assert len(d) == 1
    d.discard(good)
    await asyncio.sleep(0.05)
    calls = good.calls
    await asyncio.sleep(0.1)
    assert good.calls == calls
    assert d._handle is None
