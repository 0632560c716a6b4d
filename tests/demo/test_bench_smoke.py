"""A one-second run of the benchmark script: it works end to end and reports ratios."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "perf" / "bench.py"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_bench_smoke_prints_ratios_and_every_server_answers_200(tmp_path: Path) -> None:
    """bench.py with a tiny duration exits 0, prints the ratios and sees only 200s."""
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--duration", "1", "--repeat", "1", "--sizes", "small",
         "--warmup", "0", "--connections", "4", "--json", str(out_json),
             "--latency", "--rate", "200", "--idle", "50"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"^ratio auditproxy/naive small: \d+\.\d\d", out, re.M), out
    assert re.search(r"^ratio naive/direct small: \d+\.\d\d", out, re.M), out
    for target in ("direct", "naive", "lean", "auditproxy"):
        assert f"status {target} small: all responses 200" in out
    doc = json.loads(out_json.read_text())
    results = doc["throughput"]
    assert {r["target"] for r in results} == {"direct", "naive", "lean", "auditproxy"}
    for e in doc["latency_memory"]:
        assert e["c1_p50_ms"] > 0
        assert e["rate_p99_ms"] > 0
        assert e["rate_errors"] == 0
        assert e["rss_idle_mib"] > 0
    for r in results:
        assert r["rps"] > 0
        assert r["all_ok"] is True
        assert all(run["requests"] > 0 and run["non_2xx"] == 0 for run in r["runs"])
