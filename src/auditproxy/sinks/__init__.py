"""Sinks: where a finished exchange goes (metrics, log, recent findings, report,
recorder).

Each sink is one named function of a :class:`Completed` exchange. The handler's
finish step calls every sink in turn and contains each one's failure, so a sink
never affects the client's response or the other sinks. A sink that must wait
(the recorder with ``on_full: block``) returns an awaitable; the others return
``None`` and cost no coroutine.

The report and the recorder take the profile from the exchange: a line is
recorded with the profile its exchange was audited with, and the report counts
only exchanges audited with its own profile (a reload that changes the profile
starts a new report, see ``runtime.ProxyContext.reload``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableSequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from auditproxy.core.findings import Finding, RetryAdvice
from auditproxy.core.model import Exchange
from auditproxy.core.profile import Profile, same_guidelines

if TYPE_CHECKING:
    from auditproxy.core.report import Report
    from auditproxy.sinks.log import LogSink
    from auditproxy.sinks.metrics import Metrics
    from auditproxy.sinks.recorder import Recorder


@dataclass(frozen=True, slots=True)
class Completed:
    """One audited exchange (one upstream attempt, or one answer of the proxy's)."""

    exchange: Exchange
    findings: tuple[Finding, ...]
    advice: RetryAdvice
    method: str  # the method label: a standard method or OTHER
    total_seconds: float
    upstream_seconds: float | None
    profile: Profile  # the profile the exchange was audited with (its request's snapshot)


class Sink(NamedTuple):
    name: str
    emit: Callable[[Completed], Awaitable[None] | None]


def fan_out(
    *,
    metrics: Metrics,
    log_sink: LogSink,
    recent: MutableSequence[dict[str, Any]],
    report: Report | None,
    recorder: Recorder | None,
) -> tuple[Sink, ...]:
    """The sinks of one serving process, in the order the finish step calls them."""

    def to_metrics(c: Completed) -> None:
        up = c.upstream_seconds
        metrics.observe(
            c.exchange,
            c.findings,
            method_label=c.method,
            upstream_seconds=up,
            overhead_seconds=max(0.0, c.total_seconds - (up or 0.0)),
        )

    def to_log(c: Completed) -> None:
        up = c.upstream_seconds
        log_sink.emit(
            c.exchange,
            c.findings,
            method=c.method,
            duration_ms=c.total_seconds * 1000,
            upstream_ms=None if up is None else up * 1000,
        )

    def to_recent(c: Completed) -> None:
        exchange = c.exchange
        for f in c.findings:
            item: dict[str, Any] = f.as_dict()
            item.update(
                time=exchange.timing.started,
                request_id=exchange.request_id,
                route=exchange.route,
                method=c.method,
                status=exchange.response.status,
                origin=exchange.origin,
            )
            recent.append(item)

    sinks = [Sink("metrics", to_metrics), Sink("log", to_log), Sink("recent", to_recent)]
    if report is not None:

        def to_report(c: Completed) -> None:
            held = report.profile
            if held is None or c.profile is held or same_guidelines(c.profile, held):
                report.add(c.exchange, c.findings, c.advice)
            # else: audited under the profile a reload replaced; not this report's count

        sinks.append(Sink("report", to_report))
    if recorder is not None:
        sinks.append(
            Sink("recorder", lambda c: recorder.submit(c.exchange, c.findings, c.advice, c.profile))
        )
    return tuple(sinks)
