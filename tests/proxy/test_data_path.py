"""The proxy's own HTTP/1.1 data path end to end: pipelined requests through the
proxy answered in order, and an extension method on a later request of a
keep-alive connection (not only the first)."""

from __future__ import annotations

import asyncio

from .conftest import ProxyFactory, RawUpstream


async def _responses(reader: asyncio.StreamReader, n: int) -> list[bytes]:
    out = []
    async with asyncio.timeout(10):
        for _ in range(n):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            out.append(head.split(b"\r\n", 1)[0] + b" " + await reader.readexactly(length))
    return out


async def test_pipelined_requests_in_order_and_extension_methods_later(
    raw_upstream: RawUpstream, make_proxy: ProxyFactory
) -> None:
    for i in range(20):
        raw_upstream.responses[f"/p{i}"] = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (len(f"p{i}"), f"p{i}".encode())
        )
    raw_upstream.responses["/ext"] = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
        b"Connection: close\r\n\r\n{method}"
    )
    proxy = await make_proxy(raw_upstream.url)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(b"".join(b"GET /p%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(20)))
        got = await _responses(reader, 20)
        assert got == [b"HTTP/1.1 200 OK p%d" % i for i in range(20)]
        writer.write(b"PURGE /ext HTTP/1.1\r\nHost: a\r\n\r\n")
        (answer,) = await _responses(reader, 1)
        assert answer == b"HTTP/1.1 200 OK PURGE"
    finally:
        writer.close()
    assert raw_upstream.received[-1].startswith(b"PURGE /ext HTTP/1.1")
