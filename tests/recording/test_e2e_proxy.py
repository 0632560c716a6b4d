"""End to end: `auditproxy serve` recording in front of the sample upstream."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from auditproxy.sample_upstream import ENDPOINTS
from tests.recording.proxyproc import ServeProcess, recorded_lines, start_proxy

pytestmark = pytest.mark.slow

ROWS = [e for e in ENDPOINTS if e.weight > 0]


@pytest.fixture
async def procs() -> AsyncIterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for p in started:
        await p.kill()


async def drive(port: int, n: int, concurrency: int) -> list[int]:
    """Send ``n`` requests (the sample rows in turn) with ``concurrency`` clients; statuses."""
    statuses: list[int] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def client(session: aiohttp.ClientSession) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            ep = ROWS[i % len(ROWS)]
            sep = "&" if "?" in ep.path else "?"
            url = f"http://127.0.0.1:{port}{ep.path}{sep}access_token=tok-{i}-secret"
            headers = {**ep.request_headers(), "Authorization": f"Bearer bearer-{i}-secret"}
            try:
                async with session.request(ep.method, url, data=ep.body, headers=headers) as r:
                    await r.read()
                    statuses.append(r.status)
            except aiohttp.ClientError:
                continue  # the proxy went away (shutdown tests)

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return statuses


async def test_n_requests_give_n_lines_and_same_findings_offline(
    sample_upstream: str, tmp_path: Path, procs: list[ServeProcess]
) -> None:
    """500 requests through the recording proxy give exactly 500 parseable lines, no secret
    in them, and `auditproxy audit` on the recording finds what the live proxy found."""
    rec = tmp_path / "rec"
    proxy = await start_proxy(tmp_path, sample_upstream, f"{{enabled: true, dir: {rec}}}")
    procs.append(proxy)
    statuses = await drive(proxy.port, 500, 20)
    assert len(statuses) == 500
    assert await proxy.stop() == 0
    lines = recorded_lines(rec)
    assert len(lines) == 500
    text = "\n".join(json.dumps(e) for e in lines)
    assert "-secret" not in text

    live = {e["request_id"]: e["findings"] for e in proxy.completed()}
    assert len(live) == 500
    recorded = {e["_audit"]["request_id"]: [f["rule"] for f in e["_audit"]["findings"]]
                for e in lines}  # fmt: skip
    assert recorded == live
    assert any(live.values())

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "auditproxy", "audit", "--format", "json", "--fail-on", "never",
        *(str(p) for p in sorted(rec.rglob("*.jsonl"))),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    offline = json.loads(out)["exchanges"]
    assert [[f["rule"] for f in e["findings"]] for e in offline] == [
        [f["rule"] for f in e["_audit"]["findings"]] for e in lines
    ]


async def test_tiny_queue_lines_plus_drops_equal_requests(
    sample_upstream: str, tmp_path: Path, procs: list[ServeProcess]
) -> None:
    """With a queue of 1, lines written plus counted queue_full drops equal the requests."""
    rec = tmp_path / "rec"
    proxy = await start_proxy(tmp_path, sample_upstream,
                              f"{{enabled: true, dir: {rec}, queue_size: 1}}")  # fmt: skip
    procs.append(proxy)
    statuses = await drive(proxy.port, 400, 40)
    assert len(statuses) == 400
    await proxy.wait_completed(400)  # the recorder has seen every exchange by now
    dropped = await proxy.metric("auditproxy_recorder_dropped_total", 'reason="queue_full"')
    assert await proxy.stop() == 0
    lines = recorded_lines(rec)
    assert dropped > 0
    assert len(lines) + dropped == 400


async def test_sigterm_mid_load_loses_nothing_queued(
    sample_upstream: str, tmp_path: Path, procs: list[ServeProcess]
) -> None:
    """SIGTERM during load: every exchange the proxy completed is in the recording."""
    rec = tmp_path / "rec"
    proxy = await start_proxy(tmp_path, sample_upstream, f"{{enabled: true, dir: {rec}}}")
    procs.append(proxy)
    load = asyncio.create_task(drive(proxy.port, 3000, 30))
    await proxy.wait_completed(300)
    assert await proxy.stop() == 0
    statuses = await load
    completed = proxy.completed()
    lines = recorded_lines(rec)
    assert 300 <= len(statuses) < 3000  # the stop really happened mid-load
    assert len(lines) == len(completed)
    assert len(lines) >= len(statuses)
    ids = {e["_audit"]["request_id"] for e in lines}
    assert ids == {e["request_id"] for e in completed}


async def test_a_field_value_with_obs_text_bytes_is_recorded_as_latin_1(
    tmp_path: Path, procs: list[ServeProcess]
) -> None:
    """Bytes 0x80-0xFF in a field value (obs-text, RFC 9110 §5.5) do not lose the
    exchange: the line is written, as UTF-8, with them as ISO-8859-1 characters."""

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/x", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        p = await start_proxy(tmp_path, f"http://127.0.0.1:{runner.addresses[0][1]}",
                              f"{{enabled: true, dir: '{tmp_path / 'rec'}'}}")  # fmt: skip
        procs.append(p)
        reader, writer = await asyncio.open_connection("127.0.0.1", p.port)
        writer.write(b"GET /x HTTP/1.1\r\nHost: a\r\nX-Name: G\xf6ran\r\nConnection: close\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 200 ")
        writer.close()
        assert await p.stop() == 0
    finally:
        await runner.cleanup()
    [line] = recorded_lines(tmp_path / "rec")
    headers = {h["name"].lower(): h["value"] for h in line["request"]["headers"]}
    assert headers["x-name"] == "Göran"
    assert not [e for e in p.events if e.get("level") == "error"]
