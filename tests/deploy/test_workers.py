"""`auditproxy serve --workers 2`: two processes share the port, /metrics reports the sum.

Real processes: the sample upstream and `auditproxy serve --workers 2` as
subprocesses; every request goes on a fresh connection so the kernel's
SO_REUSEPORT balancing spreads them over both workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .procs import auditproxy_serve, free_port, http, http_ok, sample_upstream, wait_until

pytestmark = pytest.mark.slow
REQUESTS = 120


def log_events(log: Path, event: str) -> list[dict[str, object]]:
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if doc.get("event") == event:
                out.append(doc)
    return out


def metric_sum(admin: str, name: str) -> float:
    _, _, body = http("GET", admin + "/metrics")
    return sum(
        s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == name
    )


def report_totals(admin: str) -> dict[str, int]:
    _, _, body = http("GET", admin + "/-/report")
    totals: dict[str, int] = json.loads(body)["totals"]
    return totals


def test_two_workers_share_the_port_and_metrics_add_up(tmp_path: Path) -> None:
    """Both workers answer requests (distinct pids in the log), /metrics counts all of them,
    each worker records to its own folder, and SIGTERM stops the group with exit 0."""
    up_port, listen, admin = free_port(), free_port(), free_port()
    config = tmp_path / "auditproxy.yaml"
    config.write_text(yaml.safe_dump({
        "listen": f"127.0.0.1:{listen}",
        "admin": f"127.0.0.1:{admin}",
        "upstream": f"http://127.0.0.1:{up_port}",
        "record": {"enabled": True, "dir": str(tmp_path / "rec")},
        "timeouts": {"shutdown_grace": "5s"},
    }))  # fmt: skip
    log = tmp_path / "proxy.log"
    admin_url = f"http://127.0.0.1:{admin}"
    with (
        sample_upstream(tmp_path / "upstream.log", up_port) as up,
        auditproxy_serve(log, config, "--workers", "2") as proxy,
    ):
        wait_until("sample upstream", http_ok(f"http://127.0.0.1:{up_port}/v1/orders"), up, 20)
        wait_until("both workers", lambda: len(log_events(log, "proxy_started")) == 2, proxy, 30)
        wait_until("admin", http_ok(admin_url + "/healthz"), proxy, 10)
        for i in range(REQUESTS):
            path = "/v1/orders" if i % 2 else "/v1/orders/42/payment"
            status, _, _ = http("GET" if i % 2 else "POST", f"http://127.0.0.1:{listen}{path}")
            assert status == (200 if i % 2 else 402)
        assert metric_sum(admin_url, "auditproxy_requests_total") == REQUESTS
        assert metric_sum(admin_url, "auditproxy_in_flight_requests") == 0
        # /-/report covers every worker too (the others' part is at most 0.5 s old).
        wait_until("report over both workers",
                   lambda: report_totals(admin_url)["exchanges"] == REQUESTS, proxy, 5)  # fmt: skip
        assert report_totals(admin_url)["noncompliant"] == REQUESTS // 2  # the 402s
        proxy.send_signal(signal.SIGTERM)
        assert proxy.wait(30) == 0

    started = log_events(log, "proxy_started")
    pids = {e["pid"] for e in started}
    assert len(pids) == 2, started
    served = Counter(e["pid"] for e in log_events(log, "exchange_completed"))
    assert set(served) == pids, f"requests per worker pid: {dict(served)}"
    assert sum(served.values()) == REQUESTS
    recorded = {
        d.name: sum(len(f.read_text().splitlines()) for f in d.glob("*.jsonl"))
        for d in sorted((tmp_path / "rec").iterdir())
    }
    assert set(recorded) == {"worker-0", "worker-1"}
    assert all(n > 0 for n in recorded.values()), recorded
    assert sum(recorded.values()) == REQUESTS
    # `audit DIR` reads the worker-N/ folders.
    r = subprocess.run([sys.executable, "-m", "auditproxy", "audit", "--format", "json",
                        "--fail-on", "never", str(tmp_path / "rec")],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["exchanges"] == REQUESTS
    stopped = log_events(log, "workers_stopped")
    assert stopped
    assert stopped[0]["exitcodes"] == [0, 0]


def test_workers_flag_rejects_bad_values(tmp_path: Path) -> None:
    """`--workers 0` is refused with exit 2 and a message naming the flag and value."""
    r = subprocess.run(
        [sys.executable, "-m", "auditproxy", "serve", "--upstream", "http://127.0.0.1:9",
         "--workers", "0"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 2
    assert "--workers" in r.stderr
    assert "'0'" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_crashed_worker_stops_the_group(tmp_path: Path) -> None:
    """When one worker dies on its own, the parent stops the other and exits 1."""
    up_port, listen, admin = free_port(), free_port(), free_port()
    log = tmp_path / "proxy.log"
    argv_flags = ("--upstream", f"http://127.0.0.1:{up_port}", "--listen", f"127.0.0.1:{listen}",
                  "--admin", f"127.0.0.1:{admin}", "--workers", "2")  # fmt: skip
    config = tmp_path / "empty.yaml"
    config.write_text("timeouts: {shutdown_grace: 2s}\n")
    with auditproxy_serve(log, config, *argv_flags) as proxy:
        wait_until("both workers", lambda: len(log_events(log, "proxy_started")) == 2, proxy, 30)
        victim = log_events(log, "proxy_started")[1]["pid"]
        assert isinstance(victim, int)
        os.kill(victim, signal.SIGKILL)
        assert proxy.wait(30) == 1
    (exited,) = log_events(log, "worker_exited")
    assert exited["pid"] == victim
    assert exited["exitcode"] == -signal.SIGKILL
    stopped = log_events(log, "workers_stopped")
    assert stopped
    codes = stopped[0]["exitcodes"]
    assert isinstance(codes, list)
    assert codes.count(0) == 1  # the survivor stopped gracefully
