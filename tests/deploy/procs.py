"""Real processes for the deploy tests: the sample upstream, `auditproxy serve`, Prometheus.

Everything binds 127.0.0.1 on free ports; every wait is bounded in time and
raises with the process's output when the process died or never got ready.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .promql import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; (status, headers, body), any status."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    req.add_header("Connection", "close")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wait_until(
    what: str, check: Callable[[], bool], proc: subprocess.Popen[bytes] | None, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: process exited with {proc.returncode}")
        with contextlib.suppress(OSError, ValueError, KeyError):
            if check():
                return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not ready within {timeout:g}s")


def http_ok(url: str) -> Callable[[], bool]:
    return lambda: http("GET", url, timeout=2)[0] == 200


@contextlib.contextmanager
def process(
    argv: list[str], log: Path, *, env: dict[str, str] | None = None, stop_timeout: float = 30
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` with output to ``log``; SIGTERM (then SIGKILL) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})}
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(stop_timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def sample_upstream(log: Path, port: int) -> contextlib.AbstractContextManager[Any]:
    argv = [sys.executable, "-m", "auditproxy.sample_upstream", "--host", "127.0.0.1",
            "--port", str(port)]  # fmt: skip
    return process(argv, log)


def auditproxy_serve(
    log: Path, config: Path, *extra: str, env: dict[str, str] | None = None
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    argv = [sys.executable, "-m", "auditproxy", "serve", "--config", str(config), *extra]
    return process(argv, log, env=env)


class Prometheus:
    """Client for a Prometheus server's HTTP API."""

    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}" if params else self.base + path
        status, _, body = http("GET", url)
        data = json.loads(body)
        if status != 200 or data.get("status") != "success":
            raise AssertionError(f"{path} {params}: HTTP {status}: {data.get('error', body[:300])}")
        return data["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result if data["resultType"] in ("vector", "matrix") else [{"value": result}]

    def scalar(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else 0.0


@contextlib.contextmanager
def prometheus_server(
    tmp: Path, targets: list[str], rule_files: list[Path]
) -> Iterator[Prometheus]:
    """A real Prometheus (1 s scrape and rule evaluation) scraping ``targets``."""
    config = tmp / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [{"job_name": "auditproxy", "static_configs": [{"targets": targets}]}],
    }))  # fmt: skip
    port = free_port()
    argv = ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]  # fmt: skip
    with process(argv, tmp / "prometheus.log") as proc:
        prom = Prometheus(f"http://127.0.0.1:{port}")
        wait_until("prometheus", http_ok(prom.base + "/-/ready"), proc, 30)
        wait_until(
            "prometheus scraping the proxy",
            lambda: prom.scalar('min(up{job="auditproxy"})') == 1.0,
            proc,
            20,
        )
        yield prom
