"""Run `auditproxy serve` as a real process for end-to-end recording tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp


class ServeProcess:
    """A proxy process whose JSON log lines are read continuously into ``events``."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.started = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())
        self.port = 0
        self.admin_port = 0
        self.n_completed = 0
        self._cond = asyncio.Condition()

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self.events.append(event)
            if event.get("event") == "exchange_completed":
                self.n_completed += 1
            async with self._cond:
                self._cond.notify_all()
            if event.get("event") == "proxy_started" and not self.started.done():
                self.started.set_result(event)
        if not self.started.done():
            self.started.set_exception(AssertionError("proxy exited before it started"))

    async def wait_completed(self, n: int, timeout: float = 30.0) -> None:
        """Until the proxy has logged ``n`` completed exchanges."""
        async with asyncio.timeout(timeout), self._cond:
            await self._cond.wait_for(lambda: self.n_completed >= n)

    async def wait_event(self, name: str, nth: int = 1, timeout: float = 15.0) -> dict[str, Any]:
        """The ``nth`` log event called ``name``, once it has been logged."""

        def found() -> list[dict[str, Any]]:
            return [e for e in self.events if e.get("event") == name]

        async with asyncio.timeout(timeout), self._cond:
            await self._cond.wait_for(lambda: len(found()) >= nth)
        return found()[nth - 1]

    def completed(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == "exchange_completed"]

    async def metric(self, name: str, labels: str = "") -> float:
        """The value of one sample from /metrics (0 when absent)."""
        url = f"http://127.0.0.1:{self.admin_port}/metrics"
        async with aiohttp.ClientSession() as s, s.get(url) as resp:
            text = await resp.text()
        want = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code once every log line has been read."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
            await self._reader
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()


async def start_proxy(tmp_path: Path, upstream: str, record: str) -> ServeProcess:
    """Start the proxy in front of ``upstream`` with the given `record:` mapping (YAML)."""
    config = tmp_path / "auditproxy.yaml"
    config.write_text(
        f"upstream: {upstream}\nrecord: {record}\nlog: {{level: info, format: json}}\n"
        "timeouts: {shutdown_grace: 10s}\n"
    )
    return await serve_config(config)


async def serve_config(config: Path) -> ServeProcess:
    """Start ``auditproxy serve --config config`` on free ports; wait until it listens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITPROXY_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "auditproxy", "serve", "--config", str(config),
        "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    sp = ServeProcess(proc)
    async with asyncio.timeout(20):
        started = await sp.started
    sp.port = int(started["listen"].rsplit(":", 1)[1])
    sp.admin_port = int(started["admin"].rsplit(":", 1)[1])
    return sp


def recorded_lines(directory: Path) -> list[dict[str, Any]]:
    """Every line of every recording under ``directory``; each must parse."""
    out = []
    for path in sorted(directory.rglob("auditproxy-*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            out.append(json.loads(line))
    return out
