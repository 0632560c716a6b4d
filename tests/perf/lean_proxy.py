"""The data path alone: auditproxy's ``http1`` server and upstream pool with a
handler that only forwards (no audit, metrics, log or deadlines), on uvloop when
installed. The benchmark's ``lean`` target: the floor under auditproxy's cost.

    python tests/perf/lean_proxy.py --upstream http://127.0.0.1:8000 --port 8082
"""

from __future__ import annotations

import argparse
import asyncio

from auditproxy import eventloop
from auditproxy.http1.client import UpstreamPool
from auditproxy.http1.server import HttpServer, ServerLimits
from auditproxy.wire import ClientRequest, Reply

HOP_BY_HOP = frozenset(("connection", "keep-alive", "te", "trailer", "transfer-encoding",
                        "upgrade", "host"))  # fmt: skip


async def main(upstream: str, host: str, port: int) -> None:
    pool = UpstreamPool()

    async def forward(request: ClientRequest, reply: Reply) -> None:
        headers = tuple((k, v) for k, v in request.headers if k.lower() not in HOP_BY_HOP)
        body = b"".join([c async for c in _chunks(request)]) if request.has_body else None
        resp = await pool.send(upstream, request.method, request.target, headers, body)
        out = tuple((k, v) for k, v in resp.headers if k.lower() not in HOP_BY_HOP)
        payload = await resp.read_all()
        resp.release()
        await reply.send(resp.status, resp.reason, out, payload)

    server = HttpServer(forward, ServerLimits())
    await server.start(host, port)
    await asyncio.Event().wait()


async def _chunks(request: ClientRequest):  # type: ignore[no-untyped-def]
    while chunk := await request.read():
        yield chunk


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    args = parser.parse_args()
    eventloop.run(main(args.upstream.rstrip("/"), args.host, args.port), "auto")
