"""`auditproxy serve` as a real process: SIGHUP reload and graceful SIGTERM shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.proxy.conftest import Upstream


class ServeProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []

    async def wait_event(self, name: str, timeout: float = 15.0) -> dict[str, Any]:
        """The next JSON log event called ``name`` (earlier ones are kept in ``events``)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    raise AssertionError(f"process exited before logging {name}")
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                self.events.append(event)
                if event.get("event") == name:
                    return event


async def _spawn(config: Path) -> ServeProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITPROXY_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "auditproxy", "serve", "--config", str(config),
        "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    return ServeProcess(proc)


@pytest.fixture(name="serve")
async def serve_fixture() -> AsyncIterator[list[ServeProcess]]:
    procs: list[ServeProcess] = []
    yield procs
    for p in procs:
        if p.proc.returncode is None:
            p.proc.kill()
            await p.proc.wait()


async def _text_server(aiohttp_server: Any, text: str) -> TestServer:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1")
    return server


async def test_sighup_reload_valid_then_invalid(
    tmp_path: Path, aiohttp_server: Any, serve: list[ServeProcess]
) -> None:
    """SIGHUP swaps in a valid new config; an invalid one is logged and the old one kept."""
    a = await _text_server(aiohttp_server, "from-a")
    b = await _text_server(aiohttp_server, "from-b")
    config = tmp_path / "c.yaml"
    config.write_text(f"upstream: http://127.0.0.1:{a.port}\n")
    p = await _spawn(config)
    serve.append(p)
    started = await p.wait_event("proxy_started")
    url = f"http://{started['listen']}/x"
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert await r.text() == "from-a"
        config.write_text(f"upstream: http://127.0.0.1:{b.port}\n")
        p.proc.send_signal(signal.SIGHUP)
        await p.wait_event("config_reloaded")
        async with s.get(url) as r:
            assert await r.text() == "from-b"
        config.write_text("upstream: http://127.0.0.1:1\ntimeouts: {connect: later}\n")
        p.proc.send_signal(signal.SIGHUP)
        failed = await p.wait_event("config_reload_failed")
        assert "timeouts.connect" in failed["error"]
        async with s.get(url) as r:
            assert await r.text() == "from-b"
    p.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(p.proc.wait(), 15) == 0


async def test_sigterm_lets_in_flight_request_finish(
    tmp_path: Path, upstream: Upstream, serve: list[ServeProcess]
) -> None:
    """SIGTERM while a slow request is in flight: it completes with 200, exit code 0."""
    config = tmp_path / "c.yaml"
    config.write_text(f"upstream: {upstream.url}\ntimeouts: {{shutdown_grace: 10s}}\n")
    p = await _spawn(config)
    serve.append(p)
    started = await p.wait_event("proxy_started")
    async with aiohttp.ClientSession() as s:
        request = asyncio.ensure_future(s.get(f"http://{started['listen']}/slow?s=1"))
        await asyncio.sleep(0.3)
        p.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            r = await request
            body = await r.text()
    assert r.status == 200
    assert body == "slow done"
    assert await asyncio.wait_for(p.proc.wait(), 15) == 0
    await p.wait_event("proxy_stopped")
    completed = [e for e in p.events if e.get("event") == "exchange_completed"]
    assert completed[0]["status"] == 200


async def test_sigterm_cuts_what_outlives_the_grace(
    tmp_path: Path, upstream: Upstream, serve: list[ServeProcess]
) -> None:
    """shutdown_grace 1s with a 6 s request in flight: the process exits within the
    grace plus a small margin, /readyz says 503 while draining, the client gets a
    503 problem, and the cut request is logged, counted and recorded."""
    config = tmp_path / "c.yaml"
    rec = tmp_path / "rec"
    config.write_text(
        f"upstream: {upstream.url}\ntimeouts: {{shutdown_grace: 1s}}\n"
        f"record: {{enabled: true, dir: {rec}}}\n"
    )
    p = await _spawn(config)
    serve.append(p)
    started = await p.wait_event("proxy_started")
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as s:
        request = asyncio.ensure_future(s.get(f"http://{started['listen']}/slow?s=6"))
        await asyncio.sleep(0.3)
        p.proc.send_signal(signal.SIGTERM)
        t0 = loop.time()
        await p.wait_event("proxy_stopping")
        async with s.get(f"http://{started['admin']}/readyz") as ready:
            assert ready.status == 503
            assert "shutting down" in (await ready.json())["reasons"]
        r = await asyncio.wait_for(request, 10)
        problem = await r.json(content_type=None)
    assert r.status == 503
    assert problem["type"].endswith("shutting-down")
    assert await asyncio.wait_for(p.proc.wait(), 10) == 0
    elapsed = loop.time() - t0
    assert elapsed < 1.0 + 1.5, elapsed  # the grace plus the stated margin
    await p.wait_event("proxy_stopped")
    cut = [e for e in p.events if e.get("event") == "exchange_completed"]
    assert [(e["status"], e["origin"], e["error"]) for e in cut] == [(503, "proxy", "shutdown")]
    lines = [json.loads(x) for f in rec.glob("*.jsonl") for x in f.read_text().splitlines()]
    assert [(x["response"]["status"], x["_audit"]["error"]) for x in lines] == [(503, "shutdown")]
