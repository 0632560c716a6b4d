"""A response the client did not receive in full is marked as such in the
recording (``_audit.delivered``), the exchange log line and a metric, so the
recording never claims a delivery that did not happen."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from auditproxy.core.har import to_har_entry
from auditproxy.core.redact import Redaction
from auditproxy.sinks import Completed, Sink

from .conftest import Proxy, Upstream


async def test_client_leaving_mid_body_is_recorded_logged_and_counted(
    proxy: Proxy, upstream: Upstream
) -> None:
    seen: list[Completed] = []
    proxy.ctx.sinks = (*proxy.ctx.sinks, Sink("test", seen.append))
    with capture_logs() as logs:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET /big/64 HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        got = 0
        while got < 1024 * 1024:
            got += len(await reader.read(65536))
        writer.transport.abort()
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.05)
    (done,) = seen
    assert done.exchange.delivered is False
    assert done.exchange.response_body.size < 64 * 1024 * 1024
    entry = to_har_entry(done.exchange, done.findings, done.advice, profile_name="digg",
                         profile_version="x", redaction=Redaction.build())  # fmt: skip
    assert entry["_audit"]["delivered"] is False
    line = next(e for e in logs if e["event"] == "exchange_completed")
    assert line["delivered"] is False
    assert proxy.sample("auditproxy_client_aborts_total", {"route": done.exchange.route}) == 1


async def test_a_whole_answer_is_delivered(proxy: Proxy) -> None:
    seen: list[Completed] = []
    proxy.ctx.sinks = (*proxy.ctx.sinks, Sink("test", seen.append))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET /bytes/100 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    assert (await reader.read()).endswith(bytes(i % 251 for i in range(100))[-10:])
    writer.close()
    await asyncio.sleep(0.05)
    assert [c.exchange.delivered for c in seen] == [True]
    assert proxy.sample("auditproxy_client_aborts_total", {"route": seen[0].exchange.route}) == 0
