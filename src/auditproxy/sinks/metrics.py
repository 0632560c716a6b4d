"""Prometheus metrics, names and labels exactly as in SPEC §7.

The registry is injected (tests build their own ``CollectorRegistry``); the
admin server exposes it with prometheus-client's own exposition.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from auditproxy.core.findings import Finding, Severity
from auditproxy.core.model import Exchange

_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
_COUNTS = (Severity.MUST, Severity.SHOULD)
_OVERHEAD_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
)  # fmt: skip


class Metrics:
    """All auditproxy metric families, registered on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "auditproxy_requests",
            "Requests answered by the proxy, by compliance of the response.",
            ["route", "method", "status", "compliant"],
            registry=registry,
        )
        self.findings = Counter(
            "auditproxy_findings",
            "Every finding, all severities.",
            ["rule", "severity", "route", "method", "status", "origin"],
            registry=registry,
        )
        self.noncompliant_status = Counter(
            "auditproxy_noncompliant_status",
            "Status-code findings of severity must/should.",
            ["rule", "route", "method", "status"],
            registry=registry,
        )
        self.missing_headers = Counter(
            "auditproxy_missing_headers",
            "Missing-header findings of severity must/should.",
            ["header", "rule", "route", "method", "status"],
            registry=registry,
        )
        self.upstream_duration = Histogram(
            "auditproxy_upstream_duration_seconds",
            "Time from sending the request upstream to the end of the response body.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.proxy_overhead = Histogram(
            "auditproxy_proxy_overhead_seconds",
            "Time spent in the proxy itself, upstream time excluded.",
            buckets=_OVERHEAD_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "auditproxy_upstream_errors",
            "Upstream failures by kind (connect, timeout, reset, protocol).",
            ["route", "kind"],
            registry=registry,
        )
        self.retries = Counter(
            "auditproxy_retries",
            "Retry decisions taken on behalf of clients.",
            ["route", "method", "reason", "outcome"],
            registry=registry,
        )
        self.rewrites = Counter(
            "auditproxy_rewrites",
            "Response rewrites applied (or evaluated in dry-run).",
            ["rule", "action"],
            registry=registry,
        )
        self.client_aborts = Counter(
            "auditproxy_client_aborts",
            "Answers the client did not receive in full (it went away, or the proxy cut "
            "the connection after an upstream failure mid-body).",
            ["route"],
            registry=registry,
        )
        self.recorded = Counter(
            "auditproxy_recorded_exchanges",
            "Exchanges written to the recording.",
            registry=registry,
        )
        self.recorder_dropped = Counter(
            "auditproxy_recorder_dropped",
            "Exchanges the recorder could not write.",
            ["reason"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "auditproxy_in_flight_requests",
            "Requests currently being proxied.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.build_info = Gauge(
            "auditproxy_build_info",
            "Build information (always 1).",
            ["version", "profile", "profile_version"],
            registry=registry,
            multiprocess_mode="max",
        )
        for reason in ("queue_full", "write_error"):
            self.recorder_dropped.labels(reason=reason)

        # Bound children per label tuple: ``labels()`` takes a lock and validates
        # its arguments on every call; these dicts only grow with the (bounded)
        # label combinations. A child stays valid in multiprocess mode too.
        self._requests: dict[tuple[str, str, str, str], Any] = {}
        self._findings: dict[tuple[str, str, str, str, str, str], Any] = {}
        self._status: dict[tuple[str, str, str, str], Any] = {}
        self._missing: dict[tuple[str, str, str, str, str], Any] = {}
        self._upstream: dict[tuple[str, str], Any] = {}

    def observe(
        self,
        exchange: Exchange,
        findings: tuple[Finding, ...],
        *,
        method_label: str,
        upstream_seconds: float | None,
        overhead_seconds: float,
    ) -> None:
        """Count one finished exchange and its findings. An attempt that was retried
        (``attempt < attempts``) counts its findings and upstream time, not as a
        request: ``auditproxy_requests_total`` counts what the client got."""
        route = exchange.route
        status = str(exchange.response.status)
        compliant = "true"
        for f in findings:
            fkey = (f.rule, f.severity.value, route, method_label, status, exchange.origin)
            child = self._findings.get(fkey)
            if child is None:
                child = self._findings[fkey] = self.findings.labels(*fkey)
            child.inc()
            if f.severity in _COUNTS:
                compliant = "false"
                if f.category == "status":
                    skey = (f.rule, route, method_label, status)
                    child = self._status.get(skey)
                    if child is None:
                        child = self._status[skey] = self.noncompliant_status.labels(*skey)
                    child.inc()
                elif f.category == "missing_header" and f.header:
                    mkey = (f.header, f.rule, route, method_label, status)
                    child = self._missing.get(mkey)
                    if child is None:
                        child = self._missing[mkey] = self.missing_headers.labels(*mkey)
                    child.inc()
        if upstream_seconds is not None:
            ukey = (route, method_label)
            child = self._upstream.get(ukey)
            if child is None:
                child = self._upstream[ukey] = self.upstream_duration.labels(*ukey)
            child.observe(upstream_seconds)
        if exchange.attempt < exchange.attempts:
            return
        if not exchange.delivered:
            self.client_aborts.labels(route).inc()
        rkey = (route, method_label, status, compliant)
        child = self._requests.get(rkey)
        if child is None:
            child = self._requests[rkey] = self.requests.labels(*rkey)
        child.inc()
        self.proxy_overhead.observe(overhead_seconds)
