"""Fixtures for the data-path tests: the HTTP/1.1 server on 127.0.0.1 with a
handler a test chooses, and a raw socket client."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from auditproxy.http1.server import HttpServer, ServerLimits
from auditproxy.wire import ClientRequest, Reply

Handler = Callable[[ClientRequest, Reply], Awaitable[None]]


@dataclasses.dataclass
class Served:
    server: HttpServer
    seen: list[ClientRequest]

    @property
    def port(self) -> int:
        return self.server.address[1]


ServeFactory = Callable[..., Awaitable[Served]]


async def echo(request: ClientRequest, reply: Reply) -> None:
    """Answers with the request body and the method and target in headers."""
    if request.rejection is not None:
        r = request.rejection
        await reply.send(r.status, "", (("Content-Type", "text/plain"),), r.kind.encode())
        return
    parts = []
    while chunk := await request.read():
        parts.append(chunk)
    body = b"".join(parts)
    headers = (("X-Method", request.method), ("X-Target", request.target))
    await reply.send(200, "OK", headers, body)


@pytest.fixture(name="serve")
async def serve_fixture() -> AsyncIterator[ServeFactory]:
    servers: list[HttpServer] = []

    async def make(handler: Handler = echo, **limits: object) -> Served:
        seen: list[ClientRequest] = []

        async def recording(request: ClientRequest, reply: Reply) -> None:
            seen.append(request)
            await handler(request, reply)

        server = HttpServer(recording, ServerLimits(**limits))  # type: ignore[arg-type]
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return Served(server, seen)

    yield make
    for s in servers:
        await s.shutdown(0.5)


class RawClient:
    """A raw connection: write bytes, read responses as the server framed them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, *, head_only: bool = False, timeout: float = 5.0) -> Response:
        """One response: head, then a Content-Length, chunked or close-delimited body."""
        async with asyncio.timeout(timeout):
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[:-2]
            status = int(lines[0].split(" ", 2)[1])
            headers = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:]]
            h = {k.lower(): v for k, v in headers}
            if head_only or status < 200 or status in (204, 304):
                return Response(status, lines[0], headers, b"")
            if "content-length" in h:
                body = await self.reader.readexactly(int(h["content-length"]))
            elif h.get("transfer-encoding") == "chunked":
                body = b""
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    data = await self.reader.readexactly(size + 2)
                    if size == 0:
                        break
                    body += data[:-2]
            else:
                body = await self.reader.read()
            return Response(status, lines[0], headers, body)

    async def closed(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection (EOF) within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                rest = await self.reader.read()
        except (TimeoutError, ConnectionError):
            return False
        return rest == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@dataclasses.dataclass
class Response:
    status: int
    line: str
    headers: list[tuple[str, ...]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, *v in self.headers:
            if k.lower() == name.lower():
                return v[0] if v else ""
        return None


Connect = Callable[[int], Awaitable[RawClient]]


@pytest.fixture(name="client")
async def client_fixture() -> AsyncIterator[Connect]:
    clients: list[RawClient] = []

    async def connect(port: int) -> RawClient:
        c = await RawClient.connect(port)
        clients.append(c)
        return c

    yield connect
    for c in clients:
        await c.close()
