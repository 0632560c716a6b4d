"""The soak in the test suite: 20 seconds of the real run, and the checks' own tests."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.soak.accounting import Measured, Samples, bad_log_lines, checks
from tests.soak.client import Outcome
from tests.soak.mix import KINDS, plan

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_20_second_soak_balances_exactly(tmp_path: Path) -> None:
    """scripts/soak's runner for 20 s at 40/s: every check holds, and the table
    shows the exact counts (800 requests, all recorded)."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.soak.run", "--seconds", "20", "--rate", "40",
         "--keep", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "soak: every check holds" in out
    assert re.search(r"^auditproxy_requests_total +ok +800$", out, re.M), out
    files = (tmp_path / "recordings").rglob("*.jsonl")
    assert sum(len(p.read_bytes().splitlines()) for p in files) == 800, out


def _measured(n: int = 200) -> Measured:
    """What a perfect run of ``n`` requests would measure."""
    kinds = plan(n, 7)
    ids = [f"t-{i}" for i in range(n)]
    outcomes = {i: Outcome(k.outcome, k.status, 0.01) for i, k in enumerate(kinds)}
    seen: dict[str, collections.Counter[str]] = {"sample": collections.Counter(),
                                                 "flaky": collections.Counter()}  # fmt: skip
    for rid, k in zip(ids, kinds, strict=True):
        if k.upstream:
            seen[k.upstream][rid] += 1
    status = collections.Counter(str(k.status) for k in kinds)
    errors = collections.Counter(k.error for k in kinds if k.error)
    text = "".join(
        f'auditproxy_requests_total{{status="{s}"}} {c}\n' for s, c in status.items()
    ) + "".join(f'auditproxy_upstream_errors_total{{kind="{e}"}} {c}\n' for e, c in errors.items())
    text += f"auditproxy_recorded_exchanges_total {n}\nauditproxy_in_flight_requests 0\n"
    return Measured(
        kinds=kinds, ids=ids, outcomes=outcomes, upstream_ids=seen, upstream_without_id=0,
        metrics=Samples.parse(text), recorded_ids=list(ids),
        log_lines=[json.dumps({"event": "exchange_completed", "level": "info"})],
        rss=(50 << 20, 51 << 20), fds=(12, 12), rss_bound=16 << 20, fd_bound=8, exit_code=0,
    )  # fmt: skip


def _failed(m: Measured) -> set[str]:
    return {r.name for r in checks(m) if not r.ok}


def test_a_perfect_run_passes_every_check() -> None:
    assert _failed(_measured()) == set()


def test_a_lost_recording_line_fails_the_balance() -> None:
    m = _measured()
    m.recorded_ids = list(m.ids[1:])
    assert "recorded lines + recorder drops" in _failed(m)


def test_a_counted_drop_balances_a_missing_line() -> None:
    m = _measured()
    m.recorded_ids = list(m.ids[1:])
    m.metrics.values["auditproxy_recorder_dropped_total"] = {
        frozenset({("reason", "queue_full")}): 1.0
    }
    assert "recorded lines + recorder drops" not in _failed(m)


def test_a_request_the_upstream_saw_twice_fails_unless_allowed() -> None:
    m = _measured()
    i = next(i for i, k in enumerate(m.kinds) if k.upstream == "sample")
    m.upstream_ids["sample"][m.ids[i]] += 1
    assert "sample upstream: sent twice, not allowed" in _failed(m)
    m = _measured()
    i = next(i for i, k in enumerate(m.kinds) if k.may_resend)
    m.upstream_ids["flaky"][m.ids[i]] += 1
    assert _failed(m) == set()


def test_an_extra_count_a_wrong_outcome_growth_and_an_error_line_each_fail() -> None:
    m = _measured()
    m.metrics.values["auditproxy_requests_total"][frozenset({("status", "200")})] += 1
    assert {"auditproxy_requests_total", "requests_total by status = client statuses"} <= (
        _failed(m)
    )
    m = _measured()
    m.outcomes = {**m.outcomes, 0: Outcome("timeout", None, 10.0)}
    assert "client outcomes as planned" in _failed(m)
    m = _measured()
    m.rss, m.fds = (50 << 20, 70 << 20), (12, 40)
    assert {"RSS growth after warm-up", "open descriptors growth after warm-up"} <= _failed(m)
    m = _measured()
    m.log_lines = [*m.log_lines, "Traceback (most recent call last):"]
    assert "errors or tracebacks in the proxy's log" in _failed(m)


def test_log_lines_that_count_as_errors() -> None:
    ok = json.dumps({"event": "finding", "level": "warning", "message": "Traceback in a body"})
    bad = [
        json.dumps({"event": "sink_failed", "level": "error"}),
        json.dumps({"event": "x", "level": "info", "exception": "ValueError"}),
        "Task exception was never retrieved",
    ]
    assert bad_log_lines([ok, "", *bad]) == bad


def test_every_kind_of_the_mix_is_planned() -> None:
    assert {k.name for k in plan(5000, 1)} == {k.name for k in KINDS}
