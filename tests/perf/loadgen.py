"""Two loads wrk does not make, for ``bench.py``:

    loadgen.py rate URL --rate 1000 --seconds 5     # open loop at a fixed rate
    loadgen.py idle URL --connections 1000          # idle keep-alive connections

``rate`` sends GETs on a fixed schedule over a pool of keep-alive connections and
measures each latency from its scheduled start (so a stall is not hidden by a
slower send rate); prints one JSON object (count, errors, p50_ms, p99_ms).
``idle`` opens the connections, makes one request on each, prints ``ready``, and
holds them open until its standard input closes (bounded by ``--hold``).
Only for 127.0.0.1 targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status


async def _connect(host: str, port: int) -> Conn:
    reader, writer = await asyncio.open_connection(host, port)
    return Conn(reader, writer)


def _request(url: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit("loadgen: only 127.0.0.1 targets")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return host, port, f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def fixed_rate(url: str, rate: float, seconds: float, connections: int) -> dict[str, float]:
    host, port, request = _request(url)
    free: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(connections):
        free.put_nowait(await _connect(host, port))
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    total = int(rate * seconds)

    async def one(at: float) -> None:
        nonlocal errors
        await asyncio.sleep(max(0.0, at - loop.time()))
        conn = await free.get()
        try:
            status = await conn.get(request)
            if status != 200:
                errors += 1
            latencies.append((loop.time() - at) * 1000)
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
            conn = await _connect(host, port)
        free.put_nowait(conn)

    async with asyncio.timeout(seconds + 30):
        await asyncio.gather(*(one(start + i / rate) for i in range(total)))
    return {
        "count": len(latencies),
        "errors": errors,
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
    }


async def idle(url: str, connections: int, hold: float) -> None:
    host, port, request = _request(url)
    conns = []
    for _ in range(connections):
        c = await _connect(host, port)
        await c.get(request)
        conns.append(c)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    try:
        async with asyncio.timeout(hold):
            await stdin.read()
    except TimeoutError:
        pass
    for c in conns:
        c.writer.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("rate")
    r.add_argument("url")
    r.add_argument("--rate", type=float, default=1000.0)
    r.add_argument("--seconds", type=float, default=5.0)
    r.add_argument("--connections", type=int, default=50)
    i = sub.add_parser("idle")
    i.add_argument("url")
    i.add_argument("--connections", type=int, default=1000)
    i.add_argument("--hold", type=float, default=60.0)
    args = p.parse_args()
    if args.mode == "rate":
        out = asyncio.run(fixed_rate(args.url, args.rate, args.seconds, args.connections))
        print(json.dumps(out))
    else:
        asyncio.run(idle(args.url, args.connections, args.hold))
    return 0


if __name__ == "__main__":
    t0 = time.monotonic()
    sys.exit(main())
