"""Reports counted by several workers and merged equal one report that counted
everything: totals, rules with their examples, severities, pairs (coverage) and
the timeline."""

from __future__ import annotations

import json

from auditproxy.core.engine import Profile, audit, retry_advice
from auditproxy.core.model import Timing
from auditproxy.core.report import Report

from .conftest import IMF_DATE, make_exchange


def _exchanges() -> list:  # type: ignore[type-arg]
    out = []
    for i, (method, status, headers) in enumerate(
        [
            ("GET", 200, {"Date": IMF_DATE, "Content-Type": "application/json"}),
            ("POST", 201, {"Date": IMF_DATE}),
            ("GET", 503, {}),
            ("DELETE", 405, {"Date": IMF_DATE}),
            ("GET", 418, {"Date": IMF_DATE}),
            ("PUT", 200, {"Date": IMF_DATE, "Content-Type": "application/json"}),
        ]
        * 3
    ):
        timing = Timing(started=1_700_000_000 + i * 7.5)
        out.append(make_exchange(method, status, headers, timing=timing, route=f"/r{i % 4}"))
    return out


def test_merged_worker_reports_equal_one_report(digg: Profile) -> None:
    whole = Report(digg)
    parts = [Report(digg), Report(digg), Report(digg)]
    for i, ex in enumerate(_exchanges()):
        findings, advice = audit(ex, digg), retry_advice(ex, digg)
        whole.add(ex, findings, advice)
        parts[i % 3].add(ex, findings, advice)
    merged = Report(digg)
    for part in parts:
        merged.merge(json.loads(json.dumps(part.state())))  # as shared between processes
    assert merged.as_dict() == whole.as_dict()
    assert whole.as_dict()["timeline"]["points"]
