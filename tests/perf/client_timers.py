"""CPU cost per request of aiohttp's per-request client timers versus the shared
``Deadlines`` sweeper, with an aiohttp client and server in one process.

    .venv/bin/python tests/perf/client_timers.py [--rounds 8] [--requests 300]

"per-request" passes ``ClientTimeout(total, connect, sock_read)`` and switches the
read timeout to ``idle`` after the head, as the proxy did; "sweeper" passes only
``connect`` and registers each request with one ``Deadlines`` (as the proxy does
now). Rounds alternate the order; the medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from auditproxy.deadlines import Deadlines

CONCURRENCY = 32
BODY = b"x" * 211


class _Watched:
    __slots__ = ("task", "waiting")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.waiting = 0

    def check(self, now: float) -> None:
        """Nothing is ever overdue here; the sweep itself is what is measured."""


async def _main(rounds: int, requests: int) -> None:
    app = web.Application()

    async def small(_: web.Request) -> web.Response:
        return web.Response(body=BODY)

    app.router.add_get("/", small)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/"
    session = ClientSession(connector=TCPConnector(limit=100), timeout=ClientTimeout(total=None))
    per_request = ClientTimeout(total=120, connect=2, sock_read=30)
    connect_only = ClientTimeout(total=None, connect=2, sock_read=None)
    deadlines = Deadlines()

    async def timers(n: int) -> None:
        for _ in range(n):
            async with session.get(url, timeout=per_request) as r:
                if r.connection is not None and r.connection.protocol is not None:
                    r.connection.protocol.read_timeout = 60
                await r.read()

    async def sweeper(n: int) -> None:
        for _ in range(n):
            w = _Watched()
            deadlines.add(w)
            try:
                w.task = asyncio.current_task()
                w.waiting = 1
                async with session.get(url, timeout=connect_only) as r:
                    w.waiting = 2
                    await r.read()
                    w.waiting = 0
            finally:
                deadlines.discard(w)

    results: dict[str, list[float]] = {"per-request": [], "sweeper": []}
    variants = [("per-request", timers), ("sweeper", sweeper)]
    try:
        for i in range(rounds):
            for name, worker in variants if i % 2 else variants[::-1]:
                c0 = time.process_time()
                await asyncio.gather(*(worker(requests) for _ in range(CONCURRENCY)))
                results[name].append((time.process_time() - c0) / (CONCURRENCY * requests) * 1e6)
    finally:
        await session.close()
        await runner.cleanup()
    for name, values in results.items():
        rounded = ", ".join(f"{v:.0f}" for v in values)
        print(f"{name:12} median {statistics.median(values):6.1f} CPU us/request ({rounded})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--requests", type=int, default=300, help="per connection and round")
    args = p.parse_args()
    asyncio.run(_main(args.rounds, args.requests))


if __name__ == "__main__":
    main()
