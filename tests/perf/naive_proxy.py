"""A naive aiohttp pass-through: the ceiling of the simplest aiohttp proxy design.

One pooled ClientSession; each request is read whole, forwarded, the response
read whole (``await resp.read()``) and returned as a ``web.Response``. No
streaming, no auditing, no metrics. The benchmark compares auditproxy with it.

    python tests/perf/naive_proxy.py --upstream http://127.0.0.1:8000 --port 8081
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade", "content-length", "host", "content-encoding")
)  # fmt: skip
UPSTREAM = web.AppKey("upstream", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def forward(request: web.Request) -> web.Response:
    body = await request.read()
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    async with request.app[SESSION].request(
        request.method, request.app[UPSTREAM] + request.path_qs, headers=headers, data=body,
        allow_redirects=False, auto_decompress=False,
    ) as resp:  # fmt: skip
        payload = await resp.read()
        out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}
        return web.Response(status=resp.status, reason=resp.reason, headers=out, body=payload)


async def session_ctx(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        app[SESSION] = session
        yield


def make_naive_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    web.run_app(make_naive_app(args.upstream), host=args.host, port=args.port, access_log=None,
                print=None)  # fmt: skip
