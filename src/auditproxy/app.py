"""The two aiohttp applications (traffic and admin) with their resources in
``cleanup_ctx``, and the traffic side of the ``wire`` seams over aiohttp: the
client's request (:class:`AiohttpRequest`) and the one way back to it
(:class:`AiohttpReply`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import cast

from aiohttp import hdrs, web

from auditproxy.proxy import handle_exchange
from auditproxy.runtime import ProxyContext
from auditproxy.sinks.recorder import Recorder
from auditproxy.upstream import AiohttpUpstream
from auditproxy.wire import ClientBodyError, HeaderPairs, Rejection

_VERSIONS = {(1, 1): "1.1", (1, 0): "1.0"}


class AiohttpRequest:
    """``wire.ClientRequest`` over an aiohttp request."""

    __slots__ = (
        "_content",
        "content_length",
        "has_body",
        "headers",
        "host",
        "method",
        "path",
        "remote",
        "scheme",
        "target",
        "version",
    )
    rejection: Rejection | None = None

    def __init__(self, request: web.Request) -> None:
        self._content = request.content
        self.method = request.method
        self.target = request.raw_path
        self.path = request.path
        v = request.version
        self.version = _VERSIONS.get((v.major, v.minor)) or f"{v.major}.{v.minor}"
        self.headers: HeaderPairs = tuple(request.headers.items())
        self.scheme = request.scheme
        self.host = request.host
        self.remote = request.remote or ""
        self.content_length = request.content_length
        self.has_body = request.body_exists

    async def read(self) -> bytes:
        try:
            return await self._content.readany()
        except Exception as exc:
            raise ClientBodyError("client_disconnected") from exc


class _Transparent:
    """Do not invent ``Server`` or ``Content-Type`` fields the handler did not give
    (aiohttp adds both by default). ``Date`` is still added when absent, as RFC
    9110 §6.6.1 requires."""

    _keep_server = False
    _keep_content_type = False

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()  # type: ignore[misc]
        headers = cast(web.StreamResponse, self).headers
        if not self._keep_server:
            headers.popall(hdrs.SERVER, None)
        if not self._keep_content_type:
            headers.popall(hdrs.CONTENT_TYPE, None)


class _StreamedResponse(_Transparent, web.StreamResponse):
    """Streams the body chunk by chunk as it arrives."""


class _WholeResponse(_Transparent, web.Response):
    """A body known in full, sent together with the head in one write."""


def _keep_flags(resp: _Transparent, headers: HeaderPairs) -> bool:
    """Mark which fields the handler gave; True when it asked to close."""
    close = False
    for k, v in headers:
        lk = k.lower()
        if lk == "server":
            resp._keep_server = True
        elif lk == "content-type":
            resp._keep_content_type = True
        elif lk == "connection" and v.lower() == "close":
            close = True
    return close


class AiohttpReply:
    """``wire.Reply`` over aiohttp: the response object the aiohttp handler
    returns is ``response`` (prepared, or a placeholder when nothing was sent)."""

    __slots__ = ("_request", "response")

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self.response: web.StreamResponse | None = None

    @property
    def started(self) -> bool:
        return self.response is not None and self.response.prepared

    async def send(self, status: int, reason: str, headers: HeaderPairs, body: bytes) -> bool:
        resp = _WholeResponse(status=status, reason=reason or None, body=body)
        return await self._prepare(resp, headers, end=True)

    async def start(self, status: int, reason: str, headers: HeaderPairs) -> bool:
        resp = _StreamedResponse(status=status, reason=reason or None)
        return await self._prepare(resp, headers, end=False)

    async def _prepare(
        self, resp: _StreamedResponse | _WholeResponse, headers: HeaderPairs, *, end: bool
    ) -> bool:
        self.response = resp
        h = resp.headers
        for k, v in headers:
            if k.lower() != "connection":
                h.add(k, v)
        if _keep_flags(resp, headers):
            resp.force_close()
        try:
            await resp.prepare(self._request)
            if end:
                await resp.write_eof()
        except Exception:
            return False
        return True

    async def write(self, chunk: bytes) -> bool:
        assert self.response is not None
        try:
            await self.response.write(chunk)
        except Exception:
            return False
        return True

    async def end(self) -> bool:
        assert self.response is not None
        try:
            await self.response.write_eof()
        except Exception:
            return False
        return True

    def abort(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    async def pause(self, delay: float) -> bool:
        """Wait ``delay`` seconds; ``False`` as soon as the client is gone."""
        loop = asyncio.get_running_loop()
        until = loop.time() + delay
        while True:
            transport = self._request.transport
            if transport is None or transport.is_closing():
                return False
            left = until - loop.time()
            if left <= 0:
                return True
            await asyncio.sleep(min(left, 0.05))


async def _upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    ctx = app[CTX]
    upstream = ctx.upstream = AiohttpUpstream(ctx.runtime.settings)
    yield
    ctx.upstream = None
    await upstream.close()


async def _recorder_ctx(app: web.Application) -> AsyncIterator[None]:
    ctx = app[CTX]
    settings = ctx.runtime.settings
    if settings.record.enabled:
        recorder = Recorder(settings.record, ctx.metrics, ctx.runtime.profile)
        await recorder.start()
        ctx.attach_recorder(recorder)
    yield
    if ctx.recorder is not None:
        await ctx.recorder.close()


CTX = web.AppKey("auditproxy_ctx", ProxyContext)


def make_proxy_app(ctx: ProxyContext) -> web.Application:
    """The traffic application: one catch-all route to the proxy handler."""
    in_flight = ctx.metrics.in_flight

    async def handle(request: web.Request) -> web.StreamResponse:
        reply = AiohttpReply(request)
        in_flight.inc()
        try:
            await handle_exchange(ctx, AiohttpRequest(request), reply)
        finally:
            in_flight.dec()
        if reply.response is None:  # the client went away before any answer
            reply.response = web.Response(status=499)
            with contextlib.suppress(Exception):
                reply.abort()
        return reply.response

    app = web.Application(client_max_size=0, handler_args=None)
    app[CTX] = ctx
    app.cleanup_ctx.append(_upstream_ctx)
    app.cleanup_ctx.append(_recorder_ctx)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def make_admin_app(ctx: ProxyContext) -> web.Application:
    from auditproxy.admin import setup_admin_routes

    app = web.Application()
    app[CTX] = ctx
    setup_admin_routes(app, ctx)
    return app
