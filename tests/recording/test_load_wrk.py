"""The 10,000-request proof with wrk (opt-in: AUDITPROXY_LOAD_TESTS=1; needs wrk on PATH).

AUDITPROXY_LOAD_TESTS=1 .venv/bin/pytest tests/recording/test_load_wrk.py -v
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.recording.proxyproc import ServeProcess, recorded_lines, start_proxy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("AUDITPROXY_LOAD_TESTS") != "1",
        reason="load test: set AUDITPROXY_LOAD_TESTS=1",
    ),
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed"),
]

TOTAL = 10_000
THREADS = 2
PATHS = ["/v1/orders", "/v1/orders/42", "/v1/orders/987", "/v1/orders/42/receipt",
         "/v1/orders/42/events", "/v1/orders/42/invoice", "/v1/orders/42/tracking",
         "/v1/orders/42/brew"]  # fmt: skip
LUA = """
local paths = {%s}
local n, sent, limit = 0, 0, %d
request = function()
  sent = sent + 1
  return wrk.format("GET", paths[(sent %% #paths) + 1] .. "?access_token=wrk-secret-0042",
                    {["Authorization"] = "Bearer wrk-secret-bearer"})
end
response = function(status, headers, body)
  n = n + 1
  if n >= limit then wrk.thread:stop() end
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "auditproxy.sample_upstream", "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with asyncio.timeout(15):
            while True:
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                w.close()
                break
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        await proc.wait()


async def start_wrk(tmp_path: Path, port: int) -> asyncio.subprocess.Process:
    """wrk with a script that stops each thread after its share of TOTAL responses."""
    script = tmp_path / "limit.lua"
    quoted = ", ".join(f'"{p}"' for p in PATHS)
    script.write_text(LUA % (quoted, TOTAL // THREADS))
    return await asyncio.create_subprocess_exec(
        "wrk", f"-t{THREADS}", "-c32", "-d120s", "-s", str(script), f"http://127.0.0.1:{port}/",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def stop_wrk(proc: asyncio.subprocess.Process) -> str:
    """wrk keeps its clock running after its threads stop: interrupt it (it prints stats)."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    return out.decode()


@pytest.mark.parametrize("queue", [10_000, 1])
async def test_wrk_10000_requests(upstream: str, tmp_path: Path, queue: int) -> None:
    """wrk sends 10,000 requests: every answered request is one parseable line (queue 10,000),
    or lines + counted drops equal the answered requests (queue 1); no secret is written."""
    rec = tmp_path / "rec"
    proxy: ServeProcess = await start_proxy(
        tmp_path, upstream, f"{{enabled: true, dir: {rec}, queue_size: {queue}}}"
    )
    try:
        wrk = await start_wrk(tmp_path, proxy.port)
        t0 = time.monotonic()
        await proxy.wait_completed(TOTAL, timeout=120)
        elapsed = time.monotonic() - t0
        await asyncio.sleep(0.5)  # requests wrk abandoned at its stop still complete
        out = await stop_wrk(wrk)
        dropped = await proxy.metric("auditproxy_recorder_dropped_total", 'reason="queue_full"')
        assert await proxy.stop() == 0
    finally:
        await proxy.kill()
    answered = proxy.n_completed
    lines = recorded_lines(rec)
    print(
        f"\nqueue={queue} answered={answered} lines={len(lines)} dropped={dropped:.0f} "
        f"in {elapsed:.1f}s ({TOTAL / elapsed:.0f} req/s through the proxy)\n{out}"
    )
    assert answered >= TOTAL
    if queue > 1:
        assert dropped == 0
        assert len(lines) == answered
    else:
        assert dropped > 0
        assert len(lines) + dropped == answered
    text = "".join(str(e["request"]) for e in lines)
    assert "wrk-secret" not in text
