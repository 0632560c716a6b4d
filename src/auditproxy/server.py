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
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from auditproxy import logconfig
from auditproxy.app import make_admin_app
from auditproxy.runtime import ProxyContext, build_runtime
from auditproxy.settings import Settings, load_settings
from auditproxy.traffic import Traffic

log = structlog.get_logger("auditproxy")


def loader_for(config: str | None, flags: dict[str, object]) -> Callable[[], Settings]:
    """Re-reads file + env + flags the same way on every call (used by reload)."""

    def load() -> Settings:
        return load_settings(config, env=os.environ, flags=flags)

    return load


# ------------------------------------------------------------------ serving


@dataclass
class Serving:
    """The two servers of one serving process (returned by :func:`start`)."""

    ctx: ProxyContext
    traffic: Traffic
    admin_runner: web.AppRunner
    admin_site: web.TCPSite

    @property
    def address(self) -> tuple[str, int]:
        return self.traffic.address

    @property
    def admin_address(self) -> tuple[str, int]:
        host, port = self.admin_runner.addresses[0][:2]  # aiohttp's public bound addresses
        return str(host), int(port)

    async def close(self) -> None:
        await self.traffic.close()
        await self.admin_runner.cleanup()


async def start(
    settings: Settings,
    *,
    reuse_port: bool = False,
    registry: CollectorRegistry | None = None,
    loader: Callable[[], Settings] | None = None,
) -> Serving:
    """Start both servers: the traffic port (``http1``) and the admin app (aiohttp)."""
    ctx = ProxyContext(build_runtime(settings), registry=registry, loader=loader)
    traffic = Traffic(ctx)
    admin_runner = web.AppRunner(make_admin_app(ctx), access_log=None, shutdown_timeout=1.0)
    await admin_runner.setup()
    admin_site = web.TCPSite(
        admin_runner, settings.admin.host, settings.admin.port, reuse_port=reuse_port or None
    )
    try:
        await traffic.start(reuse_port=reuse_port)
        await admin_site.start()
    except OSError as exc:
        await admin_runner.cleanup()
        await traffic.close()
        raise OSError(f"cannot listen: {exc.strerror or exc}") from None
    return Serving(ctx, traffic, admin_runner, admin_site)


# A request allocates a few hundred short-lived objects; with the default gen-0
# threshold (700) the collector runs every couple of requests and walks the young
# generation each time. Nothing on the hot path builds reference cycles that must
# be reclaimed quickly, so collect less often. Still pays on the http1 data path
# (same-run bench, 3 x 4 s, CPU us/req with / without: small 113 / 116, large
# 153 / 164), so it stays.
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
    serving = await start(settings, reuse_port=reuse_port, registry=registry, loader=loader)
    ctx = serving.ctx
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, ctx.reload)
    _tune_gc()
    host, port = serving.address
    ahost, aport = serving.admin_address
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
        ctx.draining = True  # /readyz says 503 from here on
        await serving.traffic.stop_accepting()  # and idle connections close
        await ctx.drain(grace)  # in flight: finish within the grace, or be cut
        await serving.close()  # what is left, the upstream pool, the recorder (flushed)
        log.info("proxy_stopped")
        logconfig.flush()
