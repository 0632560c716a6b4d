"""The soak's load generator: an open-loop client at a fixed rate over keep-alive
connections, each response parsed by h11 (a strict HTTP/1.1 parser).

Request ``i`` is sent at ``t0 + i / rate`` whatever happened to the ones before
(open loop), on an idle connection of the pool or a new one; at most
``max_connections`` are open. Every request ends in one ``Outcome``:

    complete  a whole, well-formed response (status)
    aborted   a response head arrived, then the connection closed or reset
    closed    the connection closed before any response byte
    malformed h11 rejected what the proxy sent (the detail says why)
    timeout   nothing complete within ``timeout`` seconds
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import h11

READ = 65536


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    send_body: bool = True  # False: announce the body (Content-Length) but send none


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # complete | aborted | closed | malformed | timeout
    status: int | None
    seconds: float
    detail: str = ""


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)

    def reusable(self) -> bool:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        return False

    def close(self) -> None:
        self.writer.close()


async def _exchange(conn: _Conn, req: Request) -> tuple[str, int | None, str]:
    """Send ``req`` and read its response: (kind, status, detail)."""
    c = conn.h11
    headers = list(req.headers)
    if req.body or not req.send_body:
        headers.append(("Content-Length", str(len(req.body))))
    data = c.send(h11.Request(method=req.method, target=req.target, headers=headers))
    if req.send_body:
        data += c.send(h11.Data(data=req.body)) if req.body else b""
        data += c.send(h11.EndOfMessage())
    conn.writer.write(data)
    status: int | None = None
    try:
        await conn.writer.drain()
        while True:
            event = c.next_event()
            if event is h11.NEED_DATA:
                c.receive_data(await conn.reader.read(READ))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                return "complete", status, ""
            elif isinstance(event, h11.ConnectionClosed):
                return ("aborted" if status is not None else "closed"), status, ""
    except h11.RemoteProtocolError as exc:
        if status is not None and "peer closed" in str(exc):
            return "aborted", status, str(exc)
        if status is None and c.their_state is h11.SEND_RESPONSE and "peer closed" in str(exc):
            return "closed", None, str(exc)
        return "malformed", status, str(exc)
    except ConnectionError as exc:
        return ("aborted" if status is not None else "closed"), status, type(exc).__name__


class Pool:
    """Keep-alive connections to one address, at most ``limit`` open."""

    def __init__(self, port: int, limit: int) -> None:
        self.port = port
        self.idle: list[_Conn] = []
        self.slots = asyncio.Semaphore(limit)
        self.opened = 0

    async def send(self, req: Request, timeout: float) -> Outcome:
        t0 = time.perf_counter()
        async with self.slots:
            conn = self.idle.pop() if self.idle else None
            try:
                async with asyncio.timeout(timeout):
                    if conn is None:
                        conn = _Conn(*await asyncio.open_connection("127.0.0.1", self.port))
                        self.opened += 1
                    kind, status, detail = await _exchange(conn, req)
            except TimeoutError:
                kind, status, detail = "timeout", None, f"no complete answer in {timeout:g}s"
            except OSError as exc:
                kind, status, detail = "closed", None, f"connect: {exc}"
            if conn is not None:
                if kind == "complete" and conn.reusable():
                    self.idle.append(conn)
                else:
                    conn.close()
        return Outcome(kind, status, time.perf_counter() - t0, detail)

    def close_idle(self) -> None:
        while self.idle:
            self.idle.pop().close()


async def run_at_rate(
    pool: Pool,
    requests: Sequence[Request],
    rate: float,
    timeout: float,
    on_done: Callable[[int, Outcome], None],
    first: int = 0,
) -> None:
    """Send ``requests`` open-loop at ``rate`` per second; ``on_done(first + i, outcome)``."""
    t0 = time.perf_counter()
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int, req: Request) -> None:
        on_done(first + i, await pool.send(req, timeout))

    for i, req in enumerate(requests):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, req))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks)
