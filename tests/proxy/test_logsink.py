"""The exchange log through structlog: JSON lines (orjson) buffered and flushed on
a short timer, before other lines, and at shutdown; captured under ``capture_logs``."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from auditproxy import logconfig
from auditproxy.core.findings import Finding, Severity
from auditproxy.core.model import Body, Exchange, RequestHead, ResponseHead, Timing
from auditproxy.sinks.log import LogSink


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    logconfig.configure_logging("info", "json", stream=out)
    yield out
    logconfig.flush()
    structlog.reset_defaults()


def _exchange() -> Exchange:
    return Exchange(
        request=RequestHead(method="GET", target="/x", headers=(("Host", "a"),)),
        response=ResponseHead(status=200, reason="OK", headers=()),
        request_body=Body(size=0, sample=b""),
        response_body=Body(size=5, sample=b"hello"),
        route="/x",
        origin="upstream",
        public=False,
        request_id="rid-1",
        traceparent="tp",
        client_address="127.0.0.1",
        timing=Timing(started=0.0),
    )


def _finding(severity: Severity) -> Finding:
    return Finding(
        rule="RULE-A",
        severity=severity,
        category="missing_header",
        message="missing",
        header="Date",
    )


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_lines_are_buffered_then_flushed_on_timer(stream: io.StringIO) -> None:
    """Inside the event loop the line waits in the buffer and appears after the flush interval."""
    sink = LogSink()
    sink.emit(_exchange(), (), method="GET", duration_ms=1.23456, upstream_ms=0.5)
    assert stream.getvalue() == ""
    await asyncio.sleep(logconfig.FLUSH_INTERVAL * 3)
    (event,) = _lines(stream)
    assert event["event"] == "exchange_completed"
    assert event["level"] == "info"
    assert event["request_id"] == "rid-1"
    assert event["duration_ms"] == 1.235
    assert event["findings"] == []
    assert str(event["timestamp"]).endswith("Z")
    assert "T" in str(event["timestamp"])


async def test_other_events_flush_buffered_lines_first(stream: io.StringIO) -> None:
    """A structlog event written later appears after the buffered exchange line."""
    LogSink().emit(_exchange(), (), method="GET", duration_ms=1.0, upstream_ms=None)
    structlog.get_logger("t").info("proxy_stopped")
    assert [e["event"] for e in _lines(stream)] == ["exchange_completed", "proxy_stopped"]


async def test_finding_events_and_context(stream: io.StringIO) -> None:
    """Must findings give a warning ``finding`` line; bound context vars are merged in."""
    structlog.contextvars.bind_contextvars(pid=42)
    try:
        LogSink().emit(
            _exchange(),
            (_finding(Severity.MUST), _finding(Severity.MAY)),
            method="GET",
            duration_ms=1.0,
            upstream_ms=None,
        )
    finally:
        structlog.contextvars.clear_contextvars()
    logconfig.flush()
    events = _lines(stream)
    assert [e["event"] for e in events] == ["exchange_completed", "finding"]
    assert events[0]["findings"] == ["RULE-A", "RULE-A"]
    assert events[1]["level"] == "warning"
    assert events[1]["header"] == "Date"
    assert all(e["pid"] == 42 for e in events)


def test_level_filter_is_respected() -> None:
    """At level warning no exchange_completed line is written, finding lines still are."""
    out = io.StringIO()
    logconfig.configure_logging("warning", "json", stream=out)
    try:
        LogSink().emit(
            _exchange(), (_finding(Severity.SHOULD),), method="GET", duration_ms=1, upstream_ms=1
        )
        logconfig.flush()
        assert [e["event"] for e in _lines(out)] == ["finding"]
    finally:
        structlog.reset_defaults()


def test_capture_logs_still_sees_events(stream: io.StringIO) -> None:
    """Under capture_logs the events go through structlog and are captured, not written."""
    with capture_logs() as logs:
        LogSink().emit(_exchange(), (), method="GET", duration_ms=1.0, upstream_ms=None)
    logconfig.flush()
    assert [e["event"] for e in logs] == ["exchange_completed"]
    assert stream.getvalue() == ""


def test_console_format_goes_through_structlog() -> None:
    """With the console format the exchange line is rendered by structlog's console renderer."""
    out = io.StringIO()
    logconfig.configure_logging("info", "console", stream=out)
    try:
        LogSink().emit(_exchange(), (), method="GET", duration_ms=1.0, upstream_ms=None)
        text = out.getvalue()
        assert "exchange_completed" in text
        assert not text.startswith("{")
    finally:
        structlog.reset_defaults()


def test_context_vars_do_not_override_event_fields(stream: io.StringIO) -> None:
    """A bound request_id is dropped in favour of the event's own; other vars are kept."""
    structlog.contextvars.bind_contextvars(request_id="bound", worker=1)
    try:
        LogSink().emit(_exchange(), (), method="GET", duration_ms=1.0, upstream_ms=None)
    finally:
        structlog.contextvars.clear_contextvars()
    logconfig.flush()
    raw = stream.getvalue()
    assert raw.count('"request_id"') == 1
    (event,) = _lines(stream)
    assert event["request_id"] == "rid-1"
    assert event["worker"] == 1


def test_unexpected_value_types_still_encode(stream: io.StringIO) -> None:
    """A non-string client address still gives a valid JSON line."""
    ex = dataclasses.replace(_exchange(), client_address=("127.0.0.1", 5))  # type: ignore[arg-type]
    LogSink().emit(ex, (), method="GET", duration_ms=1.0, upstream_ms=None)
    logconfig.flush()
    (event,) = _lines(stream)
    assert event["client"] == ["127.0.0.1", 5]
