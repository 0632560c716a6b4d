"""Helpers for the recording tests: recorder settings and exchanges as the proxy builds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditproxy.core.findings import Finding, RetryAdvice, Severity
from auditproxy.core.model import Body, Exchange, RequestHead, ResponseHead, Timing
from auditproxy.sinks.metrics import Metrics

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class RecordSettings:
    enabled: bool = True
    dir: str = "recordings"
    sample: float = 1.0
    always_record_noncompliant: bool = True
    max_body: int = 64 * 1024
    rotate_bytes: int = 100 * 1024 * 1024
    keep_files: int = 20
    redact_headers: tuple[str, ...] = ()
    redact_json_fields: tuple[str, ...] = ()
    redact_query_params: tuple[str, ...] = ()
    queue_size: int = 10000
    on_full: str = "drop"
    extra: dict[str, Any] = field(default_factory=dict)


def make_exchange(
    *,
    method: str = "GET",
    target: str = "/orders/1",
    status: int = 200,
    req_headers: tuple[tuple[str, str], ...] = (),
    resp_headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),),
    req_body: bytes = b"",
    resp_body: bytes = b'{"id": 1}',
    resp_size: int | None = None,
    request_id: str = "req-1",
    started: float = 1_700_000_000.0,
    route: str = "/orders/{id}",
) -> Exchange:
    """An exchange as the proxy would hand it to the recorder."""
    return Exchange(
        request=RequestHead(
            method=method, target=target, headers=req_headers, host="api.example.test"
        ),
        response=ResponseHead(status=status, reason="OK", headers=resp_headers),
        request_body=Body(size=len(req_body), sample=req_body),
        response_body=Body(
            size=len(resp_body) if resp_size is None else resp_size, sample=resp_body
        ),
        route=route,
        request_id=request_id,
        timing=Timing(started=started, wait=0.004, upstream=0.005, total=0.006),
    )


MISSING_LOCATION = Finding(
    rule="ARP.03.LOCATION-201",
    severity=Severity.MUST,
    message="201 Created without Location",
    category="missing_header",
    header="Location",
)


NEVER = RetryAdvice(advice="never")


def sample_value(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    value = metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else float(value)
