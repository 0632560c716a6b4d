"""The serving process: the traffic and admin servers, reload on SIGHUP, and the
graceful stop on SIGTERM/SIGINT.

``serve(settings, reuse_port=..., registry=...)`` is the whole serving process, so
a multi-worker mode can run it N times with SO_REUSEPORT. SIGHUP (and
``POST /-/reload``) re-reads the configuration; SIGTERM/SIGINT stop accepting,
let in-flight requests finish within ``timeouts.shutdown_grace``, close the
recorder (flush) and return.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.http_parser import HttpRequestParserPy
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from aiohttp.web_request import BaseRequest
from prometheus_client import CollectorRegistry

from auditproxy import logconfig
from auditproxy.app import make_admin_app, make_proxy_app
from auditproxy.runtime import ProxyContext, build_runtime
from auditproxy.settings import Settings, load_settings

log = structlog.get_logger("auditproxy")


def loader_for(config: str | None, flags: dict[str, object]) -> Callable[[], Settings]:
    """Re-reads file + env + flags the same way on every call (used by reload)."""

    def load() -> Settings:
        return load_settings(config, env=os.environ, flags=flags)

    return load


# ------------------------------------------------------------------ parse errors
# aiohttp answers every request-parsing error with a plain-text 400 from its
# protocol handler, before any application code runs. The handler below keeps
# that behaviour for ambiguous framing (400, connection closed) but answers an
# over-long request line with 414 and an over-long header field with 431, as
# problem+json, and counts every such answer in auditproxy_requests_total.


# aiohttp's fast (llhttp) parser knows a fixed set of methods. A connection whose
# first request uses any other method (an extension method) is parsed by aiohttp's
# pure-Python parser instead, which accepts every token.
_FAST_METHODS = frozenset(
    (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE")
)


class _ProxyRequestHandler(RequestHandler):
    ctx: ProxyContext
    line_limit: int
    _checked_method = False

    def data_received(self, data: bytes) -> None:
        if not self._checked_method:
            self._checked_method = True
            if data.split(b" ", 1)[0] not in _FAST_METHODS:
                self._parser = HttpRequestParserPy(
                    self,
                    self._loop,
                    self._read_bufsize,
                    max_line_size=self.max_line_size,
                    max_field_size=self.max_field_size,
                    max_headers=self.max_headers,
                    payload_exception=RequestPayloadError,
                    auto_decompress=False,
                )
        super().data_received(data)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status != 400 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        title, kind = "Bad request", "bad-request"
        if isinstance(exc, LineTooLong):
            if len(exc.args) > 1 and exc.args[1] == self.line_limit:
                status, title, kind = 414, "URI too long", "uri-too-long"
            else:
                status, title, kind = 431, "Request header fields too large", "headers-too-large"
        doc = {
            "type": f"urn:auditproxy:problem:{kind}",
            "title": title,
            "status": status,
            "detail": (message or str(exc) or title).splitlines()[0][:300],
            "source": "auditproxy",
        }
        resp = web.Response(
            status=status,
            body=json.dumps(doc).encode(),
            headers={"Content-Type": "application/problem+json", "Server": "auditproxy"},
        )
        resp.force_close()
        _count_parse_error(self.ctx, status)
        return resp


def _count_parse_error(ctx: ProxyContext, status: int) -> None:
    try:
        ctx.metrics.requests.labels("other", "OTHER", str(status), "true").inc()
        log.info("exchange_completed", route="other", method="OTHER", status=status,
                 origin="proxy", error="malformed_request", findings=[])  # fmt: skip
    except Exception:  # pragma: no cover - never fail the error answer
        pass


class _ProxyServer(web.Server):
    handler_class: type[_ProxyRequestHandler]

    def __call__(self) -> RequestHandler:
        return self.handler_class(self, loop=self._loop, **self._kwargs)


def _install_parse_error_mapping(runner: web.AppRunner, ctx: ProxyContext, line: int) -> None:
    server = runner.server
    assert server is not None
    handler_class = type(
        "ProxyRequestHandler", (_ProxyRequestHandler,), {"ctx": ctx, "line_limit": line}
    )
    server.__class__ = _ProxyServer
    server.handler_class = handler_class  # type: ignore[attr-defined]


# ------------------------------------------------------------------ serving


async def start(
    settings: Settings,
    *,
    reuse_port: bool = False,
    registry: CollectorRegistry | None = None,
    loader: Callable[[], Settings] | None = None,
) -> tuple[ProxyContext, web.AppRunner, web.AppRunner, web.TCPSite, web.TCPSite]:
    """Start both servers; returns the context, runners and sites (for tests)."""
    ctx = ProxyContext(build_runtime(settings), registry=registry, loader=loader)
    limits = settings.limits
    # Distinct limits tell an over-long request line from an over-long header field.
    line_limit = limits.max_header_bytes
    runner = web.AppRunner(
        make_proxy_app(ctx),
        access_log=None,
        shutdown_timeout=1.0,  # what is still in flight was drained or cut by ctx.drain
        max_line_size=line_limit,
        max_field_size=max(1, line_limit - 1),
        keepalive_timeout=75.0,
    )
    await runner.setup()
    _install_parse_error_mapping(runner, ctx, line_limit)
    admin_runner = web.AppRunner(make_admin_app(ctx), access_log=None, shutdown_timeout=1.0)
    await admin_runner.setup()
    site = web.TCPSite(
        runner,
        settings.listen.host,
        settings.listen.port,
        reuse_port=reuse_port or None,
        backlog=max(128, limits.max_connections),
    )
    admin_site = web.TCPSite(
        admin_runner, settings.admin.host, settings.admin.port, reuse_port=reuse_port or None
    )
    try:
        await site.start()
        await admin_site.start()
    except OSError as exc:
        await admin_runner.cleanup()
        await runner.cleanup()
        raise OSError(f"cannot listen: {exc.strerror or exc}") from None
    return ctx, runner, admin_runner, site, admin_site


def bound_address(site: web.TCPSite) -> tuple[str, int]:
    server: Any = site._server
    host, port = server.sockets[0].getsockname()[:2]
    return str(host), int(port)


# A request allocates a few hundred short-lived objects; with the default gen-0
# threshold (700) the collector runs every couple of requests and walks the young
# generation each time. Nothing on the hot path builds reference cycles that must
# be reclaimed quickly, so collect less often.
GC_THRESHOLDS = (50_000, 50, 100)


def _tune_gc() -> None:
    """Move everything allocated at start-up (modules, profile, routes) out of the
    collector's view and raise the gen-0 threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def serve(
    settings: Settings,
    *,
    reuse_port: bool = False,
    registry: CollectorRegistry | None = None,
    loader: Callable[[], Settings] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully."""
    ctx, runner, admin_runner, site, admin_site = await start(
        settings, reuse_port=reuse_port, registry=registry, loader=loader
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, ctx.reload)
    _tune_gc()
    host, port = bound_address(site)
    ahost, aport = bound_address(admin_site)
    upstreams = [r.base for r in ctx.runtime.routes]
    log.info("proxy_started", listen=f"{host}:{port}", admin=f"{ahost}:{aport}",
             upstreams=upstreams, profile=ctx.runtime.profile.name, pid=os.getpid())  # fmt: skip
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        grace = ctx.runtime.settings.timeouts.shutdown_grace
        log.info("proxy_stopping", grace_seconds=grace)
        await site.stop()  # stop accepting; /readyz says 503 from here on
        await ctx.drain(grace)  # in flight: finish within the grace, or be cut
        await runner.cleanup()  # close idle connections, the upstream pool, the recorder
        await admin_runner.cleanup()
        log.info("proxy_stopped")
        logconfig.flush()
