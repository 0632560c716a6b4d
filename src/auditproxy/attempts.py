"""What the handler keeps of one client request while it is in flight, and the
finish step: each upstream attempt (and the proxy's own answer) becomes one
audited ``Exchange``, fanned out to every sink.

With retries off there is one attempt. With retries on, every attempt is its own
exchange (``attempt`` 1..N of ``attempts`` N, sharing the request id): each is
audited, counted and recorded as the upstream's answer it was.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from auditproxy.bodies import Tap
from auditproxy.core import engine
from auditproxy.core.answers import Problem
from auditproxy.core.model import (
    Body,
    Exchange,
    Origin,
    RequestHead,
    ResponseHead,
    Rewritten,
    Timing,
)
from auditproxy.core.profile import Profile
from auditproxy.core.routes import method_label
from auditproxy.sinks import Completed, Sink
from auditproxy.wire import UpstreamError, UpstreamResponse

if TYPE_CHECKING:
    from auditproxy.runtime import ProxyContext

log = structlog.get_logger("auditproxy")
_perf = time.perf_counter


@dataclass(frozen=True, slots=True)
class Asked:
    """The client's request as every exchange of it is recorded."""

    request: RequestHead
    route: str  # the route label
    public: bool
    request_id: str
    traceparent: str
    client_address: str


class Attempt:
    """What one attempt at the upstream produced."""

    __slots__ = ("delivered", "error", "head", "held", "n", "origin", "response",
                 "rewritten", "started", "t_done", "t_head", "t_send", "tap")  # fmt: skip

    def __init__(self, n: int, cap: int) -> None:
        self.n = n
        self.started = time.time()
        self.t_send = _perf()
        self.t_head: float | None = None  # seconds from sending to the response head
        self.t_done: float | None = None  # seconds from sending to the end of the body
        self.head: ResponseHead | None = None  # the upstream's own head
        self.origin: Origin = "upstream"  # "proxy": a failure set aside for a retry
        self.response: UpstreamResponse | None = None
        self.error: UpstreamError | None = None
        self.held: bytes | None = None  # the whole body, when read before replying
        self.tap = Tap(cap)
        self.rewritten: Rewritten | None = None
        self.delivered = False


@dataclass(frozen=True, slots=True)
class ProxyAnswer:
    """The proxy's own answer, as it went on the wire."""

    problem: Problem
    head: ResponseHead
    body: bytes
    delivered: bool


def exchange_of(
    asked: Asked,
    request_body: Body,
    head: ResponseHead,
    body: Body,
    *,
    origin: Origin,
    timing: Timing,
    attempt: int = 1,
    attempts: int = 1,
    error: str | None = None,
    rewritten: Rewritten | None = None,
    delivered: bool = True,
) -> Exchange:
    return Exchange(
        request=asked.request,
        response=head,
        request_body=request_body,
        response_body=body,
        route=asked.route,
        origin=origin,
        public=asked.public,
        request_id=asked.request_id,
        traceparent=asked.traceparent,
        client_address=asked.client_address,
        timing=timing,
        attempt=attempt,
        attempts=attempts,
        error=error,
        rewritten=rewritten,
        delivered=delivered,
    )


def completed(
    asked: Asked,
    request_body: Body,
    attempts: list[Attempt],
    answer: ProxyAnswer | None,
    *,
    profile: Profile,
    started: float,
    total: float,
) -> list[Completed]:
    """One audited exchange per attempt that got a response head, and one for the
    proxy's own answer (which stands for the attempts that got none)."""
    n = max(len(attempts), 1)
    out = []
    for a in attempts:
        if a.head is None:
            continue
        ex = exchange_of(
            asked, request_body, a.head, a.tap.body(), origin=a.origin,
            timing=Timing(started=a.started, wait=a.t_head, upstream=a.t_done, total=total),
            attempt=a.n, attempts=n, error=a.error.kind if a.error is not None else None,
            rewritten=a.rewritten, delivered=a.delivered,
        )  # fmt: skip
        out.append(audited(ex, profile, total, a.t_done))
    if answer is not None:
        ex = exchange_of(
            asked, request_body, answer.head, Body(size=len(answer.body), sample=answer.body),
            origin="proxy", timing=Timing(started=started, total=total), attempt=n, attempts=n,
            error=answer.problem.error, delivered=answer.delivered,
        )  # fmt: skip
        out.append(audited(ex, profile, total, None))
    return out


def audited(ex: Exchange, profile: Profile, total: float, upstream: float | None) -> Completed:
    return Completed(
        exchange=ex,
        findings=engine.audit(ex, profile),
        advice=engine.retry_advice(ex, profile),
        method=method_label(ex.request.method),
        total_seconds=total,
        upstream_seconds=upstream,
        profile=profile,
    )


async def emit(ctx: ProxyContext, done: list[Completed], request_id: str) -> None:
    """Every completed exchange to every sink, each sink's failure contained."""
    sinks: tuple[Sink, ...] = ctx.sinks
    for c in done:
        for sink in sinks:
            try:
                pending = sink.emit(c)
                if pending is not None:
                    await pending
            except Exception as exc:
                sink_failed(ctx, sink.name, exc, request_id)


def sink_failed(ctx: ProxyContext, sink: str, exc: Exception, request_id: str) -> None:
    ctx.sink_errors += 1
    with contextlib.suppress(Exception):  # logging itself broke
        log.error(
            "sink_failed", sink=sink, error=f"{type(exc).__name__}: {exc}", request_id=request_id
        )
