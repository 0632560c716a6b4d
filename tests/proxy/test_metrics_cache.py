"""``Metrics.observe`` with cached label children counts exactly like ``labels()``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from auditproxy.core.findings import Finding, Severity
from auditproxy.core.model import Exchange, RequestHead, ResponseHead
from auditproxy.sinks.metrics import Metrics


def _exchange(status: int) -> Exchange:
    return Exchange(
        request=RequestHead(method="GET", target="/a"),
        response=ResponseHead(status=status, reason="", headers=()),
        route="/a",
    )


def test_repeated_and_distinct_label_sets_are_counted_separately() -> None:
    """Two observations with one label set count 2; another status gets its own series."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    missing = Finding(
        rule="R-DATE",
        severity=Severity.MUST,
        message="m",
        category="missing_header",
        header="Date",
    )
    for status in (200, 200, 404):
        metrics.observe(
            _exchange(status),
            (missing,),
            method_label="GET",
            upstream_seconds=0.01,
            overhead_seconds=0.001,
        )
    metrics.observe(
        _exchange(200), (), method_label="GET", upstream_seconds=None, overhead_seconds=0.001
    )

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    base = {"route": "/a", "method": "GET"}
    assert value("auditproxy_requests_total", **base, status="200", compliant="false") == 2
    assert value("auditproxy_requests_total", **base, status="404", compliant="false") == 1
    assert value("auditproxy_requests_total", **base, status="200", compliant="true") == 1
    assert value("auditproxy_missing_headers_total", **base, status="200", header="Date",
                 rule="R-DATE") == 2  # fmt: skip
    assert value("auditproxy_upstream_duration_seconds_count", **base) == 3
    assert value("auditproxy_proxy_overhead_seconds_count") == 4
