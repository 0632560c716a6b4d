"""The traffic port: the HTTP/1.1 server of ``http1`` calling the handler once
per request, the upstream pool below it, and the recorder's lifetime."""

from __future__ import annotations

from auditproxy.http1.client import UpstreamPool
from auditproxy.http1.server import HttpServer, ServerLimits
from auditproxy.proxy import handle_exchange
from auditproxy.runtime import ProxyContext
from auditproxy.settings import Settings
from auditproxy.sinks.recorder import Recorder
from auditproxy.wire import ClientRequest, Reply

FINISH_SECONDS = 1.0  # at close: for handlers past their answer to finish (sinks)


def server_limits(settings: Settings) -> ServerLimits:
    limits, timeouts = settings.limits, settings.timeouts
    return ServerLimits(
        max_header_bytes=limits.max_header_bytes,
        max_request_body=limits.max_request_body,
        client_header=timeouts.client_header,
        client_read=timeouts.client_read,
        max_connections=limits.max_connections,
    )


class Traffic:
    """Listens on ``listen`` and serves every request through ``handle_exchange``."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        settings = ctx.runtime.settings
        self.server = HttpServer(self._handle, server_limits(settings))

    async def _handle(self, request: ClientRequest, reply: Reply) -> None:
        in_flight = self.ctx.metrics.in_flight
        in_flight.inc()
        try:
            await handle_exchange(self.ctx, request, reply)
        finally:
            in_flight.dec()

    async def start(self, *, reuse_port: bool = False) -> None:
        ctx = self.ctx
        settings = ctx.runtime.settings
        ctx.upstream = UpstreamPool(connect_timeout=settings.timeouts.connect)
        if settings.record.enabled:
            recorder = Recorder(settings.record, ctx.metrics, ctx.runtime.profile)
            await recorder.start()
            ctx.attach_recorder(recorder)
        try:
            await self.server.start(
                settings.listen.host,
                settings.listen.port,
                reuse_port=reuse_port,
                backlog=max(128, settings.limits.max_connections),
            )
        except OSError:
            await self.close()
            raise

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    async def stop_accepting(self) -> None:
        """No new connections; idle keep-alive connections close now."""
        await self.server.stop_accepting()

    async def close(self) -> None:
        """Close what is left: connections, the upstream pool, the recorder (flushed)."""
        ctx = self.ctx
        await self.server.stop_accepting()
        await self.server.finish_handlers(FINISH_SECONDS)
        self.server.close_all()
        if ctx.upstream is not None:
            await ctx.upstream.close()
            ctx.upstream = None
        if ctx.recorder is not None:
            await ctx.recorder.close()

    async def cleanup(self) -> None:
        await self.close()
