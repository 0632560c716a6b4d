"""The traffic handler: the one place where the order of the stages lives.

    1 prepare   validate the target, pick the route, ids, outbound headers (core.forwarding)
    2 forward   stream the request body upstream (a capped copy is teed aside)
    3 reply     stream the upstream response to the client, teeing a capped copy;
                ``annotate`` adds X-Audit-Findings from a head-only audit
    4 finish    build the Exchange from the upstream's own head; audit; metrics, log,
                recent findings, report, recorder - each contained, never failing
                the request

The proxy's own answers (400/404/408/413/502/504) go through the same finish step
with ``origin="proxy"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import structlog
from aiohttp import ClientResponse, hdrs, web
from aiohttp.streams import StreamReader
from yarl import URL

from auditproxy.core import engine
from auditproxy.core.findings import Finding, RetryAdvice
from auditproxy.core.forwarding import (
    absolute_form_authority,
    origin_form,
    outbound_request_headers,
    outbound_response_headers,
    valid_traceparent,
)
from auditproxy.core.model import (
    Body,
    Exchange,
    Origin,
    ResponseHead,
    Timing,
    new_body,
    new_exchange,
    new_request_head,
    new_response_head,
    new_timing,
)
from auditproxy.upstream import UpstreamError, classify

if TYPE_CHECKING:
    from auditproxy.app import ProxyContext, Route, Runtime

log = structlog.get_logger("auditproxy")
_perf = time.perf_counter
_randbits = random.getrandbits

STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
ANNOTATION_MAX = 512
# Length-delimited bodies up to this size are read whole and sent with the head in
# one write (fewer syscalls); larger or chunked bodies stream chunk by chunk.
SMALL_BODY = 16 * 1024
PROBLEM_TYPE = "urn:auditproxy:problem:"
# What a request is waiting for from the upstream (checked by ctx.deadlines).
_NOTHING, _HEAD, _BODY = 0, 1, 2
_NEVER = float("inf")


class Tap:
    """Counts the bytes of a body and keeps the first ``cap`` of them.

    The kept chunks are joined once, when the body is asked for (a body read in one
    piece is not copied at all)."""

    __slots__ = ("cap", "error", "kept", "parts", "size")

    def __init__(self, cap: int) -> None:
        self.size = 0
        self.kept = 0
        self.cap = cap
        self.parts: list[bytes] = []
        self.error: str | None = None  # why the client side of the body failed

    def feed(self, chunk: bytes) -> None:
        n = len(chunk)
        self.size += n
        room = self.cap - self.kept
        if room > 0:
            if n > room:
                chunk = chunk[:room]
                n = room
            self.parts.append(chunk)
            self.kept += n

    def body(self) -> Body:
        parts = self.parts
        if not parts:
            return _EMPTY_BODY if self.size == 0 else new_body(self.size, b"")
        if len(parts) > 1:
            parts[:] = [b"".join(parts)]
        return new_body(self.size, parts[0])


_EMPTY_BODY = Body(size=0, sample=b"")


class _ClientBodyError(Exception):
    """The client's request body failed (too large, too slow, gone)."""


async def _request_body(
    content: StreamReader, tap: Tap, limit: int, client_read: float, state: _State
) -> AsyncIterator[bytes]:
    while True:
        try:
            async with asyncio.timeout(client_read):
                chunk = await content.readany()
        except TimeoutError:
            tap.error = "client_read_timeout"
            raise _ClientBodyError(tap.error) from None
        except Exception as exc:
            tap.error = "client_disconnected"
            raise _ClientBodyError(tap.error) from exc
        if not chunk:
            # Sent in full: from now on the upstream owes the response head.
            state.head_at = _perf() + state.rt.settings.timeouts.response_headers
            return
        tap.feed(chunk)
        if tap.size > limit:
            tap.error = "body_too_large"
            raise _ClientBodyError(tap.error)
        yield chunk


_VERSIONS = {(1, 1): "1.1", (1, 0): "1.0"}


def _version_text(major: int, minor: int) -> str:
    return _VERSIONS.get((major, minor)) or f"{major}.{minor}"


def new_request_id() -> str:
    """128 random bits as 32 hex digits (unique, not secret: no system call)."""
    return f"{_randbits(128):032x}"


def new_traceparent() -> str:
    """A fresh W3C ``traceparent`` (version 00, sampled) with non-zero ids."""
    return f"00-{_randbits(128) or 1:032x}-{_randbits(64) or 1:016x}-01"


class _Transparent:
    """Do not invent ``Server`` or ``Content-Type`` fields the upstream did not send
    (aiohttp adds both by default). ``Date`` is still added when absent, as RFC 9110
    §6.6.1 requires; the audit sees the upstream's own head anyway."""

    _keep_server = False
    _keep_content_type = False

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()  # type: ignore[misc]
        headers = cast(web.StreamResponse, self).headers
        if not self._keep_server:
            headers.popall(hdrs.SERVER, None)
        if not self._keep_content_type:
            headers.popall(hdrs.CONTENT_TYPE, None)


class _TransparentResponse(_Transparent, web.StreamResponse):
    """Streams the body chunk by chunk as it arrives."""


class _TransparentFullResponse(_Transparent, web.Response):
    """A small body with a known length, sent together with the head in one write."""


def _has_body(request: web.Request, status: int) -> bool:
    return request.method != "HEAD" and status >= 200 and status not in (204, 304)


def annotation(findings: tuple[Finding, ...]) -> str:
    """``X-Audit-Findings`` value: rule ids, at most 512 bytes, then ``+N more``."""
    ids = [f.rule for f in findings]
    value = ""
    for i, rule in enumerate(ids):
        candidate = f"{value}, {rule}" if value else rule
        rest = len(ids) - i - 1
        suffix = f", +{rest} more" if rest else ""
        if len(candidate) + len(suffix) > ANNOTATION_MAX:
            return f"{value}, +{len(ids) - i} more" if value else f"+{len(ids)} more"
        value = candidate
    return value


def make_handler(ctx: ProxyContext) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    metrics = ctx.metrics
    in_flight = metrics.in_flight

    async def handle(request: web.Request) -> web.StreamResponse:
        in_flight.inc()
        try:
            return await _proxy(ctx, ctx.runtime, request)
        finally:
            in_flight.dec()

    return handle


async def _proxy(ctx: ProxyContext, rt: Runtime, request: web.Request) -> web.StreamResponse:
    t0 = _perf()
    started = time.time()
    headers = request.headers
    request_id = headers.get("X-Request-Id") or new_request_id()
    traceparent = headers.get("traceparent", "")
    if not valid_traceparent(traceparent):
        traceparent = new_traceparent()
    state = _State(ctx, rt, request, request_id, traceparent, t0, started)

    # 1 prepare
    target = request.raw_path
    if not target.startswith("/"):
        authority = absolute_form_authority(target)
        if authority is None or authority not in rt.own_authorities:
            return await state.problem(
                400, "foreign-target", "Request target not served",
                f"auditproxy only forwards to its configured upstreams; "
                f"{'this host' if authority is None else repr(authority)} is not one of them",
            )  # fmt: skip
        target = origin_form(target)
    state.target = target
    route = rt.route_for(request.path)
    if route is None:
        return await state.problem(
            404, "no-route", "No route", "no configured route matches this path"
        )
    state.route = route
    limit = rt.settings.limits.max_request_body
    length = request.content_length
    if length is not None and length > limit:
        return await state.problem(
            413, "body-too-large", "Request body too large",
            f"the request body of {length} bytes exceeds the proxy's limit of {limit} bytes",
        )  # fmt: skip
    deadlines = ctx.deadlines
    deadlines.add(state)
    try:
        return await state.forward()
    finally:
        deadlines.discard(state)


class _State:
    """One request in flight (plain attributes; lives for one handler call)."""

    __slots__ = (
        "client",
        "ctx",
        "expired",
        "head_at",
        "progress_at",
        "reader",
        "req_headers",
        "req_tap",
        "request",
        "request_id",
        "resp_tap",
        "route",
        "rt",
        "seen",
        "started",
        "t0",
        "t_head",
        "t_upstream",
        "target",
        "task",
        "total_at",
        "traceparent",
        "upstream_error",
        "waiting",
    )

    def __init__(
        self,
        ctx: ProxyContext,
        rt: Runtime,
        request: web.Request,
        request_id: str,
        traceparent: str,
        t0: float,
        started: float,
    ) -> None:
        self.ctx = ctx
        self.rt = rt
        self.request = request
        self.request_id = request_id
        self.traceparent = traceparent
        self.t0 = t0
        self.started = started
        self.target = request.raw_path
        self.route: Route | None = None
        self.req_tap = Tap(rt.capture_cap)
        self.resp_tap = Tap(rt.capture_cap)
        self.t_head: float | None = None
        self.t_upstream: float | None = None
        self.upstream_error: UpstreamError | None = None
        self.client = request.remote or ""
        self.req_headers = tuple(request.headers.items())
        # Upstream deadlines (perf_counter seconds), checked by ctx.deadlines.
        self.task: asyncio.Task[Any] | None = None
        self.waiting = _NOTHING
        self.head_at = _NEVER
        self.total_at = t0 + rt.settings.timeouts.total
        self.reader: StreamReader | None = None
        self.seen = 0
        self.progress_at = 0.0
        self.expired: str | None = None

    def check(self, now: float) -> None:
        """Called about every 100 ms while the request is in flight: cancel the
        handler's upstream wait once ``response_headers``, ``idle`` or ``total``
        has passed (SPEC §5). The wait turns the cancellation into a timeout."""
        waiting = self.waiting
        if waiting == _NOTHING or self.expired is not None:
            return
        t = self.rt.settings.timeouts
        if now >= self.total_at:
            why = f"no complete response within the total timeout of {t.total:g}s"
        elif waiting == _HEAD:
            if now < self.head_at:
                return
            why = f"no response head within {t.response_headers:g}s"
        else:
            reader = self.reader
            n = reader.total_bytes if reader is not None else 0
            if n != self.seen:
                self.seen = n
                self.progress_at = now
                return
            if now - self.progress_at < t.idle:
                return
            why = f"the response body paused for more than {t.idle:g}s"
        self.expired = why
        task = self.task
        if task is not None:
            task.cancel()

    def _timed_out(self) -> UpstreamError | None:
        """After a CancelledError in an upstream wait: the timeout it stands for,
        or ``None`` when something else cancelled the handler (re-raise then)."""
        self.waiting = _NOTHING
        why = self.expired
        if why is None:
            return None
        task = self.task
        if task is not None and task.uncancel() > 0:
            return None
        return UpstreamError("timeout", why)

    # 2 forward + 3 reply
    async def forward(self) -> web.StreamResponse:
        request, rt, route = self.request, self.rt, self.route
        assert route is not None
        session = self.ctx.session
        assert session is not None
        out_headers = outbound_request_headers(
            self.req_headers,
            client=self.client,
            proto=request.scheme,
            host=request.host,
            preserve_host=route.preserve_host,
            request_id=self.request_id,
            traceparent=self.traceparent,
        )
        body = None
        if request.body_exists:
            body = _request_body(
                request.content,
                self.req_tap,
                rt.settings.limits.max_request_body,
                rt.settings.timeouts.client_read,
                self,
            )
        url = URL(route.base + self.target, encoded=True)
        self.task = asyncio.current_task()
        t_send = _perf()
        if body is None:
            self.head_at = t_send + rt.settings.timeouts.response_headers
        self.waiting = _HEAD
        try:
            upstream = await session.request(
                request.method,
                url,
                headers=out_headers,
                data=body,
                allow_redirects=False,
                timeout=rt.timeout,
            )
        except asyncio.CancelledError:
            err = self._timed_out()
            if err is None:
                raise
            return await self._failed_before_reply(err)
        except Exception as exc:
            self.waiting = _NOTHING
            return await self._failed_before_reply(exc)
        try:
            now = _perf()
            self.waiting = _NOTHING
            self.t_head = now - t_send
            self.reader = upstream.content
            self.progress_at = now
            up_items = tuple(upstream.headers.items())
            resp_headers = outbound_response_headers(up_items, request_id=self.request_id)
            version = upstream.version
            up_head = new_response_head(
                upstream.status,
                upstream.reason or "",
                up_items,
                _version_text(version.major, version.minor) if version else "1.1",
            )
            if rt.settings.annotate:
                head_findings = self._audit(up_head, "upstream", None, phase="head")
                if head_findings:
                    resp_headers.append(("X-Audit-Findings", annotation(head_findings)))
            length = upstream.content_length
            if length is not None and length <= SMALL_BODY and _has_body(request, upstream.status):
                return await self._reply_small(upstream, up_head, resp_headers, t_send)
            resp = _TransparentResponse(
                status=upstream.status,
                reason=upstream.reason,
                headers=resp_headers,  # aiohttp copies it into a CIMultiDict
            )
            resp._keep_server = hdrs.SERVER in upstream.headers
            resp._keep_content_type = hdrs.CONTENT_TYPE in upstream.headers
            try:
                await resp.prepare(request)
            except Exception:
                # The client went away before the head could be sent.
                upstream.close()
                await self.finish(up_head, "upstream", resp_aborted=True)
                return resp
            tap = self.resp_tap
            content = upstream.content
            client_ok = True
            while True:
                self.waiting = _BODY
                try:
                    chunk = await content.readany()
                except asyncio.CancelledError:
                    err = self._timed_out()
                    if err is None:
                        raise
                    self._count_upstream_error(err)
                    _abort(request)
                    upstream.close()
                    client_ok = False
                    break
                except Exception as exc:
                    self.waiting = _NOTHING
                    self._count_upstream_error(exc)
                    _abort(request)
                    client_ok = False
                    break
                self.waiting = _NOTHING
                if not chunk:
                    break
                tap.feed(chunk)
                try:
                    await resp.write(chunk)
                except Exception:
                    client_ok = False
                    upstream.close()
                    break
            self.t_upstream = _perf() - t_send
            if client_ok:
                try:
                    await resp.write_eof()
                except Exception:
                    client_ok = False
            await self.finish(up_head, "upstream", resp_aborted=not client_ok)
            return resp
        finally:
            upstream.release()

    async def _reply_small(
        self,
        upstream: ClientResponse,
        up_head: ResponseHead,
        resp_headers: list[tuple[str, str]],
        t_send: float,
    ) -> web.StreamResponse:
        """Read a small, length-delimited body whole, then answer in one write."""
        self.waiting = _BODY
        try:
            data = await upstream.read()
        except asyncio.CancelledError:
            err = self._timed_out()
            if err is None:
                raise
            upstream.close()
            return await self._failed_before_reply(err)
        except Exception as exc:
            self.waiting = _NOTHING
            return await self._failed_before_reply(exc)
        self.waiting = _NOTHING
        self.t_upstream = _perf() - t_send
        self.resp_tap.feed(data)
        resp = _TransparentFullResponse(
            status=upstream.status,
            reason=upstream.reason,
            headers=resp_headers,  # aiohttp copies it into a CIMultiDict
            body=data,
        )
        resp._keep_server = hdrs.SERVER in upstream.headers
        resp._keep_content_type = hdrs.CONTENT_TYPE in upstream.headers
        aborted = False
        try:
            await resp.prepare(self.request)
            await resp.write_eof()
        except Exception:
            aborted = True
        await self.finish(up_head, "upstream", resp_aborted=aborted)
        return resp

    async def _failed_before_reply(self, exc: Exception) -> web.StreamResponse:
        tap_error = self.req_tap.error
        if tap_error == "body_too_large":
            limit = self.rt.settings.limits.max_request_body
            return await self.problem(
                413, "body-too-large", "Request body too large",
                f"the request body exceeds the proxy's limit of {limit} bytes",
            )  # fmt: skip
        if tap_error == "client_read_timeout":
            return await self.problem(
                408, "client-timeout", "Request body timeout",
                "the client paused longer than the proxy's client_read timeout",
            )  # fmt: skip
        if tap_error == "client_disconnected":
            return await self.problem(
                400, "client-disconnected", "Client disconnected",
                "the client closed the connection while sending the request body",
            )  # fmt: skip
        err = self._count_upstream_error(exc)
        if err.kind == "timeout":
            return await self.problem(
                504, "upstream-timeout", "Upstream timeout",
                f"auditproxy got no timely response from the upstream: {err.detail}",
                error=err.kind,
            )  # fmt: skip
        return await self.problem(
            502, f"upstream-{err.kind}", "Bad gateway",
            f"auditproxy could not get a response from the upstream ({err.kind}): {err.detail}",
            error=err.kind,
        )  # fmt: skip

    def _count_upstream_error(self, exc: Exception) -> UpstreamError:
        err = classify(exc)
        self.upstream_error = err
        label = self.rt.labeler.label(self.request.path)
        with contextlib.suppress(Exception):  # metrics must never fail a request
            self.ctx.metrics.upstream_errors.labels(label, err.kind).inc()
        log.warning(
            "upstream_error",
            kind=err.kind,
            detail=err.detail,
            route=label,
            request_id=self.request_id,
        )
        return err

    async def problem(
        self, status: int, kind: str, title: str, detail: str, *, error: str | None = None
    ) -> web.StreamResponse:
        """The proxy's own answer as RFC 9457 problem+json, counted and recorded."""
        doc = {
            "type": PROBLEM_TYPE + kind,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": f"urn:auditproxy:request:{self.request_id}",
            "source": "auditproxy",
        }
        body = json.dumps(doc).encode()
        headers = {
            "Content-Type": "application/problem+json",
            "X-Request-Id": self.request_id,
            "Server": "auditproxy",
            "Via": "1.1 auditproxy",
        }
        resp = web.Response(status=status, body=body, headers=headers)
        if status in (400, 408, 413):
            resp.force_close()  # the rest of the request body is not read
        try:
            await resp.prepare(self.request)
            await resp.write_eof()
        except Exception:
            pass
        self.resp_tap.feed(body)
        head = ResponseHead(status=status, reason=resp.reason, headers=tuple(headers.items()))
        await self.finish(head, "proxy", error=error)
        return resp

    def _audit(
        self, head: ResponseHead, origin: Origin, timing: Timing | None, *, phase: engine.Phase
    ) -> tuple[Finding, ...]:
        return engine.audit(self._exchange(head, origin, timing), self.rt.profile, phase=phase)

    def _exchange(
        self,
        head: ResponseHead,
        origin: Origin,
        timing: Timing | None,
        error: str | None = None,
    ) -> Exchange:
        req = self.request
        version = req.version
        return new_exchange(
            new_request_head(
                req.method,
                self.target,
                self.req_headers,
                _version_text(version.major, version.minor),
                req.scheme,
                req.host,
            ),
            head,
            self.req_tap.body(),
            self.resp_tap.body(),
            self.rt.labeler.label(req.path),
            origin,
            self.route.public if self.route is not None else False,
            self.request_id,
            self.traceparent,
            self.client,
            timing or new_timing(self.started, None, None, 0.0),
            1,
            error,
        )

    # 4 finish
    async def finish(
        self,
        head: ResponseHead,
        origin: Origin,
        *,
        error: str | None = None,
        resp_aborted: bool = False,
    ) -> None:
        """Audit and emit to every sink. Never raises: the client already has its answer."""
        ctx = self.ctx
        try:
            total = _perf() - self.t0
            up = self.t_upstream
            timing = new_timing(self.started, self.t_head, up, total)
            if error is None and self.upstream_error is not None:
                error = self.upstream_error.kind
            exchange = self._exchange(head, origin, timing, error)
            profile = self.rt.profile
            findings = engine.audit(exchange, profile)
            advice = engine.retry_advice(exchange, profile)
        except Exception as exc:
            _sink_failed(ctx, "audit", exc, self.request_id)
            return
        method = exchange.request.method
        method_label = method if method in STANDARD_METHODS else "OTHER"
        try:
            ctx.metrics.observe(
                exchange,
                findings,
                method_label=method_label,
                upstream_seconds=up,
                overhead_seconds=max(0.0, total - (up or 0.0)),
            )
        except Exception as exc:
            _sink_failed(ctx, "metrics", exc, self.request_id)
        try:
            ctx.log_sink.emit(
                exchange,
                findings,
                method=method_label,
                duration_ms=total * 1000,
                upstream_ms=None if up is None else up * 1000,
            )
        except Exception as exc:
            _sink_failed(ctx, "log", exc, self.request_id)
        if findings:
            _remember(ctx, exchange, findings, method_label)
        if ctx.report is not None:
            try:
                ctx.report.add(exchange, findings, advice)
            except Exception as exc:
                _sink_failed(ctx, "report", exc, self.request_id)
        if ctx.recorder is not None:
            await _record(ctx, exchange, findings, advice)


async def _record(
    ctx: ProxyContext, exchange: Exchange, findings: tuple[Finding, ...], advice: RetryAdvice
) -> None:
    try:
        assert ctx.recorder is not None
        await ctx.recorder.submit(exchange, findings, advice)
    except Exception as exc:
        _sink_failed(ctx, "recorder", exc, exchange.request_id)


def _remember(
    ctx: ProxyContext, exchange: Exchange, findings: tuple[Finding, ...], method: str
) -> None:
    at = exchange.timing.started
    for f in findings:
        item: dict[str, Any] = f.as_dict()
        item.update(
            time=at,
            request_id=exchange.request_id,
            route=exchange.route,
            method=method,
            status=exchange.response.status,
            origin=exchange.origin,
        )
        ctx.recent.append(item)


def _sink_failed(ctx: ProxyContext, sink: str, exc: Exception, request_id: str) -> None:
    ctx.sink_errors += 1
    with contextlib.suppress(Exception):  # logging itself broke
        log.error(
            "sink_failed", sink=sink, error=f"{type(exc).__name__}: {exc}", request_id=request_id
        )


def _abort(request: web.Request) -> None:
    """Close the client connection without finishing the response, so a truncated
    body can never be mistaken for a whole one."""
    transport = request.transport
    if transport is not None:
        transport.abort()
