"""The log sink: one ``exchange_completed`` event per exchange, one ``finding``
event (warning) per must/should finding, through structlog (logger
``auditproxy.exchange``, whose lines ``logconfig`` buffers). No header values
are logged, so no secrets can leak here (SPEC §12).
"""

from __future__ import annotations

from typing import Any

import structlog

from auditproxy import logconfig
from auditproxy.core.findings import Finding
from auditproxy.core.model import Exchange


def _exchange_fields(
    exchange: Exchange,
    findings: tuple[Finding, ...],
    method: str,
    status: int,
    duration_ms: float,
    upstream_ms: float | None,
) -> dict[str, Any]:
    return {
        "request_id": exchange.request_id,
        "traceparent": exchange.traceparent,
        "route": exchange.route,
        "method": method,
        "status": status,
        "origin": exchange.origin,
        "duration_ms": round(duration_ms, 3),
        "upstream_ms": None if upstream_ms is None else round(upstream_ms, 3),
        "request_bytes": exchange.request_body.size,
        "response_bytes": exchange.response_body.size,
        "findings": [f.rule for f in findings],
        "error": exchange.error,
        "client": exchange.client_address,
        "attempt": exchange.attempt,
        "delivered": exchange.delivered,
    }


class LogSink:
    def __init__(self) -> None:
        self._log: Any = structlog.get_logger(logconfig.EXCHANGE_LOGGER)

    def emit(
        self,
        exchange: Exchange,
        findings: tuple[Finding, ...],
        *,
        method: str,
        duration_ms: float,
        upstream_ms: float | None,
    ) -> None:
        status = exchange.response.status
        self._log.info(
            "exchange_completed",
            **_exchange_fields(exchange, findings, method, status, duration_ms, upstream_ms),
        )
        for f in findings:
            if f.counts:
                self._log.warning(
                    "finding",
                    request_id=exchange.request_id,
                    rule=f.rule,
                    severity=f.severity.value,
                    message=f.message,
                    header=f.header,
                    route=exchange.route,
                    method=method,
                    status=status,
                    origin=exchange.origin,
                )
