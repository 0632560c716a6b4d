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
from json.encoder import encode_basestring_ascii
from typing import Any

import structlog

from auditproxy import logconfig
from auditproxy.core.findings import Finding
from auditproxy.core.model import Exchange

_INFO = logging.INFO
_WARNING = logging.WARNING


_enc = encode_basestring_ascii
_EXCHANGE_TAIL = '"event":"exchange_completed","level":"info"'
_EXCHANGE_FIELDS = (
    "request_id", "traceparent", "route", "method", "status", "origin", "duration_ms",
    "upstream_ms", "request_bytes", "response_bytes", "findings", "error", "client",
    "attempt", "delivered",
)  # fmt: skip
_OWN = frozenset(
    (*_EXCHANGE_FIELDS, "rule", "severity", "message", "header", "event", "level", "timestamp")
)


def _exchange_members(
    exchange: Exchange,
    findings: tuple[Finding, ...],
    method: str,
    status: int,
    duration_ms: float,
    upstream_ms: float | None,
) -> str:
    """The ``exchange_completed`` fields as JSON members, encoded field by field
    (about half the cost of a generic ``json.dumps`` of the same dict)."""
    # encode_basestring_ascii raises TypeError on a non-string, the "d" format
    # ValueError on a non-integer: the caller then uses the generic encoder.
    error = exchange.error
    upstream = "null" if upstream_ms is None else repr(round(float(upstream_ms), 3))
    return (
        f'"request_id":{_enc(exchange.request_id)},"traceparent":{_enc(exchange.traceparent)},'
        f'"route":{_enc(exchange.route)},"method":{_enc(method)},"status":{status:d},'
        f'"origin":{_enc(exchange.origin)},"duration_ms":{round(float(duration_ms), 3)!r},'
        f'"upstream_ms":{upstream},"request_bytes":{exchange.request_body.size:d},'
        f'"response_bytes":{exchange.response_body.size:d},'
        f'"findings":[{",".join([_enc(f.rule) for f in findings])}],'
        f'"error":{"null" if error is None else _enc(error)},'
        f'"client":{_enc(exchange.client_address)},"attempt":{exchange.attempt:d},'
        f'"delivered":{"true" if exchange.delivered else "false"}'
    )


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
            try:
                members = _exchange_members(
                    exchange, findings, method, status, duration_ms, upstream_ms
                )
            except (TypeError, ValueError):  # an unexpected value type: generic encoder
                fast("exchange_completed", "info", _exchange_fields(
                    exchange, findings, method, status, duration_ms, upstream_ms
                ))  # fmt: skip
            else:
                logconfig.emit_members(members, _EXCHANGE_TAIL, _OWN)
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
