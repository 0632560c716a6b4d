"""`auditproxy demo`: the traffic plan, the progress output and the whole command."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from auditproxy.commands.demo import Progress, plan
from auditproxy.progress import ProgressBar
from auditproxy.sample_upstream import ENDPOINTS, MISSING_FROM

DEMO_ROWS = [e for e in ENDPOINTS if e.weight > 0]


def test_plan_sends_every_demo_row_once_then_a_weighted_mix() -> None:
    """A plan of N calls has N calls and covers every demo row when N allows it."""
    calls = plan(100, seed=1)
    assert len(calls) == 100
    assert {c.endpoint.name for c in calls} == {e.name for e in DEMO_ROWS}
    assert all(c.endpoint.weight > 0 for c in calls)
    short = plan(5, seed=1)
    assert len(short) == 5
    assert len({c.endpoint.name for c in short}) == 5


def test_plan_is_reproducible_and_varies_ids_within_existing_orders() -> None:
    """The same seed gives the same plan; varied ids stay below the missing-id range."""
    assert plan(50, seed=3) == plan(50, seed=3)
    assert plan(50, seed=3) != plan(50, seed=4)
    for call in plan(200, seed=5):
        if call.endpoint.varies_id:
            first_id = int(re.findall(r"/(\d+)", call.path)[0])
            assert 1 <= first_id < MISSING_FROM
        else:
            assert call.path == call.endpoint.path


def test_progress_without_tty_draws_nothing_then_one_summary() -> None:
    """Without a terminal no bar is drawn; the summary line counts requests and errors."""
    out = io.StringIO()
    progress = Progress(ProgressBar(out, 400, label="  traffic "))
    for i in range(400):
        progress.advance(ok=i % 100 != 0)
    assert out.getvalue() == ""
    line = progress.summary()
    assert "400/400" in line
    assert "100%" in line
    assert "4 errors" in line


@pytest.mark.slow
def test_demo_once_prints_the_report_and_urls(tmp_path: Path) -> None:
    """`auditproxy demo --once --requests 60` exits 0 with the rule ids and the URLs."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "auditproxy", "demo", "--once", "--requests", "60",
         "--record-dir", str(tmp_path / "rec")],
        capture_output=True, text=True, timeout=120, check=False, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert len(DEMO_ROWS) <= 60  # so the burst sends every row once
    for rule in {r for e in DEMO_ROWS for r in e.rules}:
        assert rule in out, rule
    assert "never seen (VER.06)" in out  # the per-API part: /legacy has no api-info
    assert "snake_case, but" in out  # and /v1 has a camelCase minority
    assert "/orders/{id}" in out
    assert re.search(r"http://127\.0\.0\.1:\d+/metrics", out)
    assert re.search(r"Proxy: +http://127\.0\.0\.1:\d+", out)
    assert str(tmp_path / "rec") in out
    assert "traffic: 60/60" in proc.stderr
    assert list((tmp_path / "rec").iterdir()), "nothing was recorded"
