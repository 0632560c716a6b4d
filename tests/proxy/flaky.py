"""A scripted flaky upstream on 127.0.0.1 for the retry and rewrite tests.

Each path has a script: a list of steps, one per request received on that path
(the last step repeats). A step is what the upstream does with that request:
answer with a status and headers, reset the connection before the status line,
reset after the status line, or hang for a while. Every request received is
recorded (method, path, headers, body), so a test can count what the upstream
saw."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest


@dataclasses.dataclass(frozen=True)
class Step:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b"{}"
    do: str = "answer"  # answer | reset_before | reset_after_status | hang
    seconds: float = 0.0


def answer(status: int, body: bytes = b"{}", **headers: str) -> Step:
    pairs = tuple((k.replace("_", "-"), v) for k, v in headers.items())
    return Step(status=status, headers=pairs, body=body)


RESET_BEFORE = Step(do="reset_before")
RESET_AFTER_STATUS = Step(do="reset_after_status")


def hang(seconds: float) -> Step:
    return Step(do="hang", seconds=seconds)


@dataclasses.dataclass
class Received:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


@dataclasses.dataclass
class Flaky:
    port: int
    scripts: dict[str, list[Step]]
    received: list[Received]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, path: str, *steps: Step) -> str:
        self.scripts[path] = list(steps)
        return path

    def seen(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


def _step(scripts: dict[str, list[Step]], received: list[Received], path: str) -> Step:
    steps = scripts.get(path) or [answer(200)]
    n = sum(1 for r in received if r.path == path) - 1
    return steps[min(n, len(steps) - 1)]


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
    pairs: list[tuple[str, str]] = [(k, v) for k, v in headers]
    length = next((int(v) for k, v in pairs if k.lower() == "content-length"), 0)
    chunked = any(k.lower() == "transfer-encoding" and "chunked" in v for k, v in pairs)
    body = b""
    if length:
        body = await reader.readexactly(length)
    elif chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    return Received(method, target.split("?")[0], pairs, body)


def _response(step: Step, method: str) -> bytes:
    lines = [f"HTTP/1.1 {step.status} X"]
    names = {k.lower() for k, _ in step.headers}
    lines += [f"{k}: {v}" for k, v in step.headers]
    body = b"" if method == "HEAD" or step.status in (204, 304) else step.body
    if "content-length" not in names and step.status not in (204, 304):
        lines.append(f"Content-Length: {len(step.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@pytest.fixture(name="flaky")
async def flaky_fixture() -> AsyncIterator[Flaky]:
    scripts: dict[str, list[Step]] = {}
    received: list[Received] = []
    tasks: set[asyncio.Task[Any]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while (req := await _read_request(reader)) is not None:
                received.append(req)
                step = _step(scripts, received, req.path)
                if step.do == "reset_before":
                    writer.transport.abort()
                    return
                if step.do == "hang":
                    await asyncio.sleep(step.seconds)
                    writer.transport.abort()
                    return
                if step.do == "reset_after_status":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
                    await writer.drain()
                    writer.transport.abort()
                    return
                writer.write(_response(step, req.method))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            tasks.discard(asyncio.current_task())  # type: ignore[arg-type]

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield Flaky(port, scripts, received)
    server.close()
    for t in list(tasks):
        t.cancel()
    await server.wait_closed()
