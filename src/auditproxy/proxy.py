"""The traffic handler: the stages of one exchange, in order.

    handle_exchange(ctx, client, reply)
      1 prepare  the target, the route, ids and limits (core.forwarding); a refusal
                 is answered at once by the proxy (6)
      2 forward  one attempt at the upstream through ``wire.Upstream.send``, under
                 the attempt's own deadlines (deadlines.AttemptWatch: per-try
                 timeout inside the exchange's ``total`` and ``retry.deadline``)
      3 retry    core.retry decides from the attempt's outcome (status or error
                 kind, method, key, body held, Retry-After, budget, deadline left);
                 back off, then forward again
      4 audit    before the reply only when rewrite or annotate need findings: the
                 upstream's own head (and body, when it was held whole)
      5 rewrite  core.rewrite turns the upstream's head into the head the client
                 gets; annotate adds X-Audit-Findings
      6 reply    one reply path for every answer (``wire.Reply``): the upstream's,
                 whole or streamed, or the proxy's own problem+json (core.answers)
      7 finish   every attempt as one audited Exchange to every sink (attempts.py)

Each stage is one method below; the I/O underneath is the two ``wire`` seams.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import TYPE_CHECKING

import structlog

from auditproxy import attempts
from auditproxy.attempts import Asked, Attempt, ProxyAnswer
from auditproxy.bodies import RequestBody, Tap
from auditproxy.core import engine, retry
from auditproxy.core.annotate import ANNOTATION_HEADER, annotate_wanted, annotation
from auditproxy.core.answers import Problem, client_body_problem, problem_message, upstream_problem
from auditproxy.core.findings import Finding
from auditproxy.core.forwarding import (
    absolute_form_authority,
    origin_form,
    outbound_request_headers,
    outbound_response_headers,
    valid_traceparent,
)
from auditproxy.core.httpsyntax import reason_phrase
from auditproxy.core.model import RequestHead, ResponseHead, Rewritten, Timing
from auditproxy.core.retry import ATTEMPTS_HEADER, RetryPolicy
from auditproxy.core.rewrite import apply_rewrites
from auditproxy.core.routes import method_label as method_label_of
from auditproxy.deadlines import BODY, HEAD, AttemptWatch
from auditproxy.runtime import SHUTDOWN_CUT
from auditproxy.wire import ClientBodyError, ClientRequest, HeaderPairs, Reply, UpstreamError

if TYPE_CHECKING:
    from auditproxy.runtime import ProxyContext, Route, Runtime

log = structlog.get_logger("auditproxy")
_perf = time.perf_counter
_randbits = random.getrandbits

# Length-delimited bodies up to this size are read whole and sent with the head in
# one write (fewer syscalls); larger or chunked bodies stream chunk by chunk.
SMALL_BODY = 16 * 1024
_NEVER = float("inf")


def new_request_id() -> str:
    """128 random bits as 32 hex digits (unique, not secret: no system call)."""
    return f"{_randbits(128):032x}"


def new_traceparent() -> str:
    """A fresh W3C ``traceparent`` (version 00, sampled) with non-zero ids."""
    return f"00-{_randbits(128) or 1:032x}-{_randbits(64) or 1:016x}-01"


async def handle_exchange(ctx: ProxyContext, client: ClientRequest, reply: Reply) -> None:
    """Answer one client request; every path ends in the finish step."""
    rt = ctx.runtime
    flight = _Flight(ctx, rt, client, reply)
    task = asyncio.current_task()
    if task is not None:
        ctx.flights.add(task)
    try:
        prepared = prepare(rt, client)
        if isinstance(prepared, Problem):
            flight.answered = await answer(reply, prepared, flight.request_id)
        else:
            flight.target, flight.route = prepared
            await flight.run()
    except asyncio.CancelledError as exc:
        if task is None or SHUTDOWN_CUT not in exc.args:
            raise
        task.uncancel()
        await _cut_at_shutdown(flight)
    finally:
        if task is not None:
            ctx.flights.discard(task)
    await finish(flight)


async def _cut_at_shutdown(flight: _Flight) -> None:
    """The shutdown grace ended before this request did: a 503 when nothing was
    sent yet, else the connection is aborted; either way it is finished as cut."""
    if flight.reply.started:
        flight.reply.abort()  # the attempt is finished with delivered=False
        return
    for a in flight.attempts:
        a.head = None  # the proxy's answer stands for what the upstream had not finished
    detail = "auditproxy stopped before the upstream answered"
    problem = Problem(503, "shutting-down", "Shutting down", detail, error="shutdown")
    flight.answered = await answer(flight.reply, problem, flight.request_id)


def prepare(rt: Runtime, client: ClientRequest) -> tuple[str, Route] | Problem:
    """Stage 1: the origin-form target and the route, or the proxy's refusal."""
    if client.rejection is not None:
        r = client.rejection
        return Problem(r.status, r.kind, reason_phrase(r.status) or "Bad request", r.detail)
    target = client.target
    if client.method == "CONNECT" or target == "*":
        form = "CONNECT" if client.method == "CONNECT" else "asterisk-form (OPTIONS *)"
        return Problem(
            501, "not-implemented", "Not implemented",
            f"auditproxy is a reverse proxy: {form} requests are not forwarded",
        )  # fmt: skip
    if not target.startswith("/"):
        authority = absolute_form_authority(target)
        if authority is None or authority not in rt.own_authorities:
            return Problem(
                400, "foreign-target", "Request target not served",
                f"auditproxy only forwards to its configured upstreams; "
                f"{'this host' if authority is None else repr(authority)} is not one of them",
            )  # fmt: skip
        target = origin_form(target)
    route = rt.route_for(client.path)
    if route is None:
        return Problem(404, "no-route", "No route", "no configured route matches this path")
    limit = rt.settings.limits.max_request_body
    length = client.content_length
    if length is not None and length > limit:
        return Problem(
            413, "body-too-large", "Request body too large",
            f"the request body of {length} bytes exceeds the proxy's limit of {limit} bytes",
        )  # fmt: skip
    return target, route


class _Flight:
    """One client request in flight, from prepare to finish."""

    __slots__ = ("answered", "attempts", "body", "client", "ctx", "gone", "reply",
                 "request_id", "route", "rt", "sent_headers", "started", "t0", "target",
                 "traceparent", "watch")  # fmt: skip

    def __init__(self, ctx: ProxyContext, rt: Runtime, client: ClientRequest, reply: Reply):
        self.ctx, self.rt, self.client, self.reply = ctx, rt, client, reply
        self.t0 = _perf()
        self.started = time.time()
        self.request_id = _header(client.headers, "x-request-id") or new_request_id()
        tp = _header(client.headers, "traceparent") or ""
        self.traceparent = tp if valid_traceparent(tp) else new_traceparent()
        self.target = client.target
        self.route: Route | None = None
        self.body = RequestBody(client, Tap(rt.capture_cap))
        self.attempts: list[Attempt] = []
        self.answered: ProxyAnswer | None = None
        self.watch: AttemptWatch | None = None
        self.gone = False  # the client left during a retry's back-off
        self.sent_headers: HeaderPairs | None = None  # the head sent upstream

    async def run(self) -> None:
        """Stages 2-6 for a request that is forwarded."""
        assert self.route is not None
        try:
            policy = self.route.retry
            if policy is None:
                attempt = await self.forward(self.body.stream() if self.client.has_body else None)
            else:
                attempt = await forward_with_retries(self, policy)
                if self.gone:
                    return
            if self.body.error is not None:
                limit = self.rt.settings.limits.max_request_body
                problem = client_body_problem(self.body.error, limit)
            elif attempt.error is None:
                await deliver(self, attempt)
                return
            else:
                problem = upstream_problem(attempt.error.kind, _why(attempt.error))
            self.answered = await answer(
                self.reply, problem, self.request_id, self.attempts_header()
            )
        finally:
            if self.watch is not None:
                self.ctx.deadlines.discard(self.watch)

    def attempts_header(self) -> HeaderPairs:
        n = len(self.attempts)
        return ((ATTEMPTS_HEADER, str(n)),) if n > 1 else ()

    # 2 forward
    async def forward(
        self,
        body: bytes | AsyncIterator[bytes] | None,
        end_at: float = _NEVER,
        why: tuple[str, float] = ("", 0.0),
    ) -> Attempt:
        """One attempt; ``end_at``/``why``: a deadline of its own (per-try, retry)."""
        client, route, upstream = self.client, self.route, self.ctx.upstream
        assert route is not None
        assert upstream is not None
        headers = self.sent_headers
        if headers is None:  # once per request: every attempt sends the same head
            headers = self.sent_headers = tuple(
                outbound_request_headers(
                    client.headers,
                    client=client.remote,
                    proto=client.scheme,
                    host=client.host,
                    preserve_host=route.preserve_host,
                    request_id=self.request_id,
                    traceparent=self.traceparent,
                )
            )
        attempt = Attempt(len(self.attempts) + 1, self.rt.capture_cap)
        self.attempts.append(attempt)
        watch = self._arm(end_at, why)
        if not isinstance(body, AsyncIterator):
            watch.request_sent()  # nothing left to stream: the head is owed from now on
        send = upstream.send(route.base, client.method, self.target, headers, body)
        try:
            response = await watch.wait(send, HEAD)
        except UpstreamError as err:
            return self._failed(attempt, err)
        attempt.t_head = _perf() - attempt.t_send
        attempt.response = watch.response = response
        attempt.head = ResponseHead(
            status=response.status,
            reason=response.reason,
            headers=response.headers,
            http_version=response.version,
        )
        length = response.content_length
        small = length is not None and length <= SMALL_BODY
        if small and _has_body(client.method, response.status):
            try:
                attempt.held = await watch.wait(response.read_all(), BODY)
            except UpstreamError as err:
                return self._failed(attempt, err)
            attempt.tap.feed(attempt.held)
            attempt.t_done = _perf() - attempt.t_send
        return attempt

    def _arm(self, end_at: float, why: tuple[str, float]) -> AttemptWatch:
        """A fresh watch for the next attempt (the previous one's is dropped)."""
        timeouts = self.rt.settings.timeouts
        if self.watch is not None:
            self.ctx.deadlines.discard(self.watch)
        total_at = self.t0 + timeouts.total
        if total_at <= end_at:
            end_at = total_at
            why = ("no complete response within the total timeout", timeouts.total)
        watch = self.watch = AttemptWatch(timeouts, end_at, why)
        self.body.on_complete = watch.request_sent
        self.ctx.deadlines.add(watch)
        return watch

    def _failed(self, attempt: Attempt, err: UpstreamError) -> Attempt:
        """Before any byte reached the client: the proxy's answer stands for it."""
        attempt.error = err
        attempt.head = None
        if attempt.response is not None:
            attempt.response.release()
        if self.body.error is None:
            self.count_upstream_error(err)
        return attempt

    def count_upstream_error(self, err: UpstreamError) -> None:
        label = self.rt.labeler.label(self.client.path)
        try:  # metrics must never fail a request
            self.ctx.metrics.upstream_errors.labels(label, err.kind).inc()
        except Exception as exc:
            attempts.sink_failed(self.ctx, "metrics", exc, self.request_id)
        log.warning("upstream_error", kind=err.kind, detail=err.detail, route=label,
                    request_id=self.request_id)  # fmt: skip


async def forward_with_retries(flight: _Flight, policy: RetryPolicy) -> Attempt:
    """Stages 2-3 with retry on: attempts until core.retry says stop, each under
    its per-try timeout inside the retry deadline; the last attempt is returned."""
    client, ctx = flight.client, flight.ctx
    assert flight.route is not None
    budget = ctx.retry_budget(flight.route, policy)
    budget.record_request(time.monotonic())
    body, replayable = await _replayable_body(flight, policy)
    if flight.body.error is not None:
        return Attempt(1, 0)  # the client's body failed before anything was sent
    method_label = method_label_of(client.method)
    deadline_at = flight.t0 + policy.deadline
    while True:
        per_try = _perf() + policy.per_try_timeout
        end_at, why = min(
            (per_try, ("no response within the per-try timeout", policy.per_try_timeout)),
            (deadline_at, ("no response within the retry deadline", policy.deadline)),
        )
        attempt = await flight.forward(body, end_at, why)
        head, err = attempt.head, attempt.error
        status = head.status if head is not None else None
        kind = err.kind if err is not None and head is None else None
        if not retry.candidate(policy, status, kind) and attempt.n == 1:
            return attempt  # the usual case: nothing to retry, nothing to count
        route = flight.rt.labeler.label(client.path, allocate=status not in (None, 404))
        if not retry.candidate(policy, status, kind):
            reason = str(status) if status is not None else str(kind)
            _count_retry(ctx, route, method_label, reason, "succeeded", flight.request_id)
            return attempt  # a retried request ended in an answer not retried
        now = time.monotonic()
        decision = retry.decide(
            policy,
            method=client.method,
            request_headers=client.headers,
            attempt=attempt.n,
            status=status,
            error_kind=kind,
            retry_after=head.header("Retry-After") if head is not None else None,
            response_started=flight.reply.started,
            client_failed=flight.body.error is not None,
            body_replayable=replayable,
            route=route,
            now_epoch=time.time(),
            deadline_left=min(deadline_at, flight.t0 + flight.rt.settings.timeouts.total) - _perf(),
            rand=random.random(),
            budget_ok=True,  # asked below, and only when a retry is wanted
        )
        go = decision.retry and budget.try_acquire(now)
        outcome: str | None = decision.outcome if go or not decision.retry else "budget_denied"
        if outcome is None and attempt.n > 1:
            outcome = "succeeded"  # e.g. a 413 whose condition did not hold
        if outcome is not None:
            _count_retry(ctx, route, method_label, decision.reason, outcome, flight.request_id)
        if not go:
            return attempt
        await _set_aside(flight, attempt)
        if not await flight.reply.pause(decision.delay):
            log.info("retry_cancelled", reason="client_gone", request_id=flight.request_id)
            flight.gone = True
            return attempt


async def _replayable_body(
    flight: _Flight, policy: RetryPolicy
) -> tuple[bytes | AsyncIterator[bytes] | None, bool]:
    """The body to send on every attempt and whether it can be sent again: held
    whole when it is at most ``max_buffered_body`` and the method may be retried,
    else streamed once (``not_retriable`` if a retry is wanted)."""
    client = flight.client
    if not client.has_body:
        return None, True
    if not retry.method_allows_retry(policy, client.method, client.headers):
        return flight.body.stream(), False
    try:
        held = await flight.body.hold(policy.max_buffered_body)
    except ClientBodyError:
        return None, False
    return (held, True) if held is not None else (flight.body.stream(), False)


async def _set_aside(flight: _Flight, attempt: Attempt) -> None:
    """An attempt about to be retried: keep its answer for the recording (the body
    up to the capture cap) and free the connection; a failure before any answer
    is recorded as the proxy's answer it would have been."""
    response, head = attempt.response, attempt.head
    if head is None:
        assert attempt.error is not None
        problem = upstream_problem(attempt.error.kind, _why(attempt.error))
        headers, body = problem_message(
            problem, request_id=flight.request_id, date=formatdate(usegmt=True)
        )
        attempt.origin = "proxy"
        attempt.head = ResponseHead(status=problem.status, reason=reason_phrase(problem.status),
                                    headers=headers)  # fmt: skip
        attempt.tap.feed(body)
        return
    if response is None or attempt.held is not None:
        return
    watch = flight.watch
    assert watch is not None
    try:
        while attempt.tap.size < attempt.tap.cap:
            chunk = await watch.wait(response.read(), BODY)
            if not chunk:
                break
            attempt.tap.feed(chunk)
    except UpstreamError:
        pass
    finally:
        response.release()  # closes it when the rest was not read


def _count_retry(
    ctx: ProxyContext, route: str, method: str, reason: str, outcome: str, request_id: str
) -> None:
    try:
        ctx.metrics.retries.labels(route, method, reason, outcome).inc()
    except Exception as exc:  # metrics must never fail a request
        attempts.sink_failed(ctx, "metrics", exc, request_id)


async def deliver(flight: _Flight, attempt: Attempt) -> None:
    """Stages 4-6 for the upstream's answer: audit if needed, rewrite, reply."""
    head, response = attempt.head, attempt.response
    assert head is not None
    assert response is not None
    headers = outbound_response_headers(head.headers, request_id=flight.request_id)
    headers.extend(flight.attempts_header())
    out = ResponseHead(status=head.status, reason=head.reason, headers=tuple(headers),
                       http_version=head.http_version)  # fmt: skip
    out, drop = _rewrite(flight, attempt, out)
    if drop:
        attempt.delivered = await flight.reply.send(out.status, out.reason, out.headers, b"")
        response.release()  # the unread body closes the connection
    elif attempt.held is not None:
        attempt.delivered = await flight.reply.send(out.status, out.reason, out.headers,
                                                    attempt.held)  # fmt: skip
        response.release()
    else:
        attempt.delivered = await _stream(flight, attempt, out)


def _rewrite(flight: _Flight, attempt: Attempt, out: ResponseHead) -> tuple[ResponseHead, bool]:
    """Stages 4-5: the head the client gets (rewrite rules, then the annotation),
    and whether its body is dropped (a status rewritten to 204/304)."""
    rt, client = flight.rt, flight.client
    rules = rt.rewrites
    annotate = annotate_wanted(rt.settings.annotate, client.headers)
    if not rules and not annotate:
        return out, False
    held = attempt.held
    if held is None and not _has_body(client.method, out.status):
        held = b""
    findings: tuple[Finding, ...] = ()
    if annotate or rt.rewrites_read_findings:
        findings = _audit(flight, attempt, phase="all" if held is not None else "head")
    drop = False
    if rules:
        route = rt.labeler.label(client.path, allocate=out.status != 404)
        result = apply_rewrites(rules, out, _asked(flight).request, route, findings, held)
        for name, action in result.applied:
            _count_rewrite(flight.ctx, name, action, flight.request_id)
        out, drop = result.head, result.drop_body
        if result.changed:
            done = tuple(f"{n}:{a}" for n, a in result.applied if a not in ("dry_run", "skipped"))
            attempt.rewritten = Rewritten(head=out, rules=done)
    if annotate and findings:
        out = ResponseHead(status=out.status, reason=out.reason,
                           headers=(*out.headers, (ANNOTATION_HEADER, annotation(findings))),
                           http_version=out.http_version)  # fmt: skip
        if attempt.rewritten is not None:
            attempt.rewritten = Rewritten(head=out, rules=attempt.rewritten.rules)
    return out, drop


def _count_rewrite(ctx: ProxyContext, rule: str, action: str, request_id: str) -> None:
    try:
        ctx.metrics.rewrites.labels(rule, action).inc()
    except Exception as exc:  # metrics must never fail a request
        attempts.sink_failed(ctx, "metrics", exc, request_id)


async def _stream(flight: _Flight, attempt: Attempt, head: ResponseHead) -> bool:
    reply, response, tap, watch = flight.reply, attempt.response, attempt.tap, flight.watch
    assert response is not None
    assert watch is not None
    try:
        if not await reply.start(head.status, head.reason, head.headers):
            return False
        while chunk := await watch.wait(response.read(), BODY):
            tap.feed(chunk)
            if not await reply.write(chunk):
                return False
        attempt.t_done = _perf() - attempt.t_send
        return await reply.end()
    except UpstreamError as err:
        flight.count_upstream_error(err)
        attempt.error = err
        reply.abort()  # a truncated body must never look whole
        return False
    finally:
        response.release()


async def answer(
    reply: Reply, problem: Problem, request_id: str, extra: HeaderPairs = ()
) -> ProxyAnswer:
    """Stage 6 for the proxy's own answer: problem+json, head exactly as sent."""
    headers, body = problem_message(problem, request_id=request_id, date=formatdate(usegmt=True))
    headers += extra
    reason = reason_phrase(problem.status)
    delivered = await reply.send(problem.status, reason, headers, body)
    head = ResponseHead(status=problem.status, reason=reason, headers=headers)
    return ProxyAnswer(problem, head, body, delivered)


async def finish(flight: _Flight) -> None:
    """Stage 7: audit every attempt and the proxy's answer; emit each to every sink."""
    try:
        done = attempts.completed(
            _asked(flight),
            flight.body.tap.body(),
            flight.attempts,
            flight.answered,
            profile=flight.rt.profile,
            started=flight.started,
            total=_perf() - flight.t0,
        )
    except Exception as exc:
        attempts.sink_failed(flight.ctx, "audit", exc, flight.request_id)
        return
    await attempts.emit(flight.ctx, done, flight.request_id)


def _asked(flight: _Flight) -> Asked:
    client = flight.client
    return Asked(
        request=RequestHead(
            method=client.method,
            target=flight.target,
            headers=client.headers,
            http_version=client.version,
            scheme=client.scheme,
            host=client.host,
        ),
        route=flight.rt.labeler.label(client.path, allocate=_shows_path_exists(flight)),
        public=flight.route.public if flight.route is not None else False,
        request_id=flight.request_id,
        traceparent=flight.traceparent,
        client_address=client.remote,
    )


def _audit(flight: _Flight, attempt: Attempt, *, phase: engine.Phase) -> tuple[Finding, ...]:
    assert attempt.head is not None
    ex = attempts.exchange_of(
        _asked(flight), flight.body.tap.body(), attempt.head, attempt.tap.body(),
        origin="upstream", timing=Timing(started=attempt.started),
    )  # fmt: skip
    return engine.audit(ex, flight.rt.profile, phase=phase)


def _shows_path_exists(flight: _Flight) -> bool:
    """May this exchange take a new route label? Not when the proxy refused the
    request, nor when the upstream answered 404 (SPEC §6, scanners)."""
    answered = flight.answered
    if answered is not None and answered.problem.error is None:
        return False
    last = flight.attempts[-1].head if flight.attempts else None
    return last is None or last.status != 404


def _has_body(method: str, status: int) -> bool:
    return method != "HEAD" and status >= 200 and status not in (204, 304)


def _header(headers: HeaderPairs, lname: str) -> str | None:
    for k, v in headers:
        if k.lower() == lname:
            return v
    return None


def _why(err: UpstreamError) -> str | None:
    """What a client may learn of an upstream failure: which limit passed."""
    return err.detail if err.kind == "timeout" else None
