"""The log sink: one ``exchange_completed`` event per exchange, one ``finding``
event (warning) per must/should finding. No header values are logged, so no
secrets can leak here (SPEC §12).

With JSON logs configured by ``logconfig.configure_logging`` the events skip the
structlog processor chain: the dict is built here and written as one buffered
JSON line (same event names, fields, level and timestamp). Otherwise (console
format, ``capture_logs``) they go through structlog.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

from auditproxy import logconfig
from auditproxy.core.findings import Finding
from auditproxy.core.model import Exchange

_INFO = logging.INFO
_WARNING = logging.WARNING


class LogSink:
    def __init__(self) -> None:
        self._log: Any = structlog.get_logger("auditproxy.exchange")

    def emit(
        self,
        exchange: Exchange,
        findings: tuple[Finding, ...],
        *,
        method: str,
        duration_ms: float,
        upstream_ms: float | None,
    ) -> None:
        fast = logconfig.fast_emitter()
        if fast is None:
            self._emit_structlog(exchange, findings, method, duration_ms, upstream_ms)
            return
        status = exchange.response.status
        if logconfig.level_enabled(_INFO):
            fast(
                "exchange_completed",
                "info",
                {
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
                },
            )
        if findings and logconfig.level_enabled(_WARNING):
            for f in findings:
                if f.counts:
                    fast(
                        "finding",
                        "warning",
                        {
                            "request_id": exchange.request_id,
                            "rule": f.rule,
                            "severity": f.severity.value,
                            "message": f.message,
                            "header": f.header,
                            "route": exchange.route,
                            "method": method,
                            "status": status,
                            "origin": exchange.origin,
                        },
                    )

    def _emit_structlog(
        self,
        exchange: Exchange,
        findings: tuple[Finding, ...],
        method: str,
        duration_ms: float,
        upstream_ms: float | None,
    ) -> None:
        status = exchange.response.status
        self._log.info(
            "exchange_completed",
            request_id=exchange.request_id,
            traceparent=exchange.traceparent,
            route=exchange.route,
            method=method,
            status=status,
            origin=exchange.origin,
            duration_ms=round(duration_ms, 3),
            upstream_ms=None if upstream_ms is None else round(upstream_ms, 3),
            request_bytes=exchange.request_body.size,
            response_bytes=exchange.response_body.size,
            findings=[f.rule for f in findings],
            error=exchange.error,
            client=exchange.client_address,
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
