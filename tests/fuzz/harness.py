"""The fuzz tests' real processes and servers, all on 127.0.0.1.

- ``Upstream``: a raw asyncio server in a thread of its own. It parses every
  request the proxy forwards with h11 (strict: a request h11 rejects is a
  malformed request the proxy sent, and is kept in ``rejected``). A request for
  ``/fz/<n>`` is answered with exactly the bytes of script ``n`` (then it closes,
  or keeps the connection open); any other request gets a small JSON echo.
- ``ProxyProcess``: ``python -m auditproxy serve --config F`` with short timeouts
  and recording on, its output in a log file read incrementally.
- ``exchange``: one request on a fresh connection to the proxy, its answer read by
  h11 (strict) within a bound; the ``Answer`` says what came back.

Nothing here depends on how the proxy serves HTTP: only on its ports, /healthz
and its log.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import h11

# The proxy's timeouts in the fuzz config, and how long an answer may take at most.
TIMEOUTS = {"connect": 1.0, "response_headers": 1.0, "idle": 1.0, "total": 3.0,
            "client_read": 0.5, "shutdown_grace": 2.0}  # fmt: skip
MAX_BODY = 64 * 1024
MAX_HEADER_BYTES = 8 * 1024
ANSWER_WITHIN = TIMEOUTS["total"] + 2.0  # total plus scheduling slack on a busy machine


@dataclass
class Script:
    """What the upstream sends for one ``/fz/<n>`` request."""

    data: bytes
    keep_open: bool = False  # then read on: what comes next is parsed as a new request


@dataclass
class Upstream:
    port: int = 0
    scripts: dict[int, Script] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)  # h11 errors on forwarded requests
    received: list[tuple[bytes, bytes]] = field(default_factory=list)  # (method, target)
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _echo(method: bytes, target: bytes, size: int) -> list[h11.Event]:
    body = json.dumps({"method": method.decode("latin-1"), "target": target.decode("latin-1"),
                       "received": size}).encode()  # fmt: skip
    head = h11.Response(status_code=200, headers=[("Content-Type", "application/json"),
                                                  ("Content-Length", str(len(body)))])  # fmt: skip
    return [head, h11.Data(data=body), h11.EndOfMessage()]


async def _serve(up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    conn = h11.Connection(h11.SERVER)
    method = target = b""
    size = 0
    try:
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if "peer closed" not in str(exc):  # a request given up is not malformed
                    up.rejected.append(f"{exc} (after {method!r} {target!r})")
                return
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                if not data and conn.their_state is h11.IDLE:
                    return
            elif isinstance(event, h11.Request):
                method, target, size = event.method, event.target, 0
                up.received.append((method, target))
            elif isinstance(event, h11.Data):
                size += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                if target.startswith(b"/fz/"):
                    script = up.scripts.get(int(target[4:].split(b"?")[0] or b"0"))
                    if script is None or not script.data:
                        return
                    writer.write(script.data)
                    await writer.drain()
                    if not script.keep_open:
                        return
                    conn = h11.Connection(h11.SERVER)  # whatever comes next is a new request
                    continue
                for out in _echo(method, target, size):
                    writer.write(conn.send(out) or b"")
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                return
    except (ConnectionError, h11.LocalProtocolError):
        pass
    finally:
        writer.close()


def start_upstream() -> tuple[Upstream, threading.Thread]:
    """The upstream, serving on its own event loop in a daemon thread."""
    up = Upstream()
    ready = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        up.loop = loop

        async def main() -> None:
            server = await asyncio.start_server(lambda r, w: _serve(up, r, w), "127.0.0.1", 0)
            up.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await server.serve_forever()

        try:
            loop.run_until_complete(main())
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="fuzz-upstream", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise AssertionError("the fuzz upstream did not start")
    return up, thread


def stop_upstream(up: Upstream, thread: threading.Thread) -> None:
    loop = up.loop
    assert loop is not None

    def cancel_all() -> None:
        for task in asyncio.all_tasks(loop):
            task.cancel()

    loop.call_soon_threadsafe(cancel_all)
    thread.join(10)


class ProxyProcess:
    """``auditproxy serve`` with the fuzz config; its log read as it grows."""

    def __init__(self, tmp: Path, upstream: str) -> None:
        t = ", ".join(f"{k}: {v}s" for k, v in TIMEOUTS.items())
        config = tmp / "auditproxy.yaml"
        config.write_text(
            f"upstream: {upstream}\n"
            f"record: {{enabled: true, dir: '{tmp / 'recordings'}', sample: 1.0}}\n"
            f"timeouts: {{{t}}}\n"
            f"limits: {{max_request_body: {MAX_BODY}, max_header_bytes: {MAX_HEADER_BYTES}}}\n"
            "log: {level: info, format: json}\n"
        )
        self.log_path = tmp / "proxy.log"
        self._offset = 0
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITPROXY_")}
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "auditproxy", "serve", "--config", str(config),
                 "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        self.port = self.admin = 0
        deadline = time.monotonic() + 20
        while not self.port:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError("the proxy did not start:\n" + self.log_path.read_text())
            for line in self.log_path.read_text().splitlines():
                if '"proxy_started"' in line:
                    event = json.loads(line)
                    self.port = int(event["listen"].rsplit(":", 1)[1])
                    self.admin = int(event["admin"].rsplit(":", 1)[1])
            time.sleep(0.05)

    def new_log_lines(self) -> list[str]:
        """Complete lines the proxy logged since the last call."""
        with self.log_path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        return data[:end].decode("utf-8", "replace").splitlines()

    def healthy(self) -> bool:
        """The process is up and /healthz answers 200."""
        if self.proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.admin), timeout=5) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                return _read_all(s, 5).startswith(b"HTTP/1.1 200 ")
        except OSError:
            return False

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def _read_all(s: socket.socket, timeout: float) -> bytes:
    s.settimeout(timeout)
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def get_bytes(target: str, *fields: str, method: str = "GET") -> bytes:
    """A request head without a body: the request line, then ``fields`` as given."""
    return "\r\n".join([f"{method} {target} HTTP/1.1", *fields, "", ""]).encode("latin-1")


@dataclass(frozen=True)
class Answer:
    """What came back for one request.

    kind: ``complete`` (a whole, well-formed response), ``aborted`` (a head came,
    then the connection closed before the body was whole), ``closed`` (closed
    before any response byte), ``malformed`` (h11 rejected the bytes), ``hang``
    (nothing complete within the bound)."""

    kind: str
    status: int | None = None
    body: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    seconds: float = 0.0
    detail: str = ""
    raw: bytes = b""


def exchange(port: int, data: bytes, method: str = "GET", within: float = ANSWER_WITHIN) -> Answer:
    """Send ``data`` on a fresh connection; read the first response with h11.

    h11 is told only the method (a HEAD answer has no body); the bytes sent may be
    anything, so h11 never sees them."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="HEAD" if method == "HEAD" else "GET", target="/",
                          headers=[("Host", "x")]))  # fmt: skip
    conn.send(h11.EndOfMessage())
    t0 = time.monotonic()
    raw = b""
    status: int | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body = b""

    def answer(kind: str, detail: str = "") -> Answer:
        return Answer(kind, status, body, headers, time.monotonic() - t0, detail, raw[:2000])

    with socket.create_connection(("127.0.0.1", port), timeout=within) as s:
        try:
            s.sendall(data)
        except OSError as exc:
            detail = f"send: {exc}"
        else:
            detail = ""
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                kind = "aborted" if status is not None and "peer closed" in str(exc) else None
                if kind is None and status is None and not raw:
                    kind = "closed"
                return answer(kind or "malformed", str(exc))
            if event is h11.NEED_DATA:
                left = within - (time.monotonic() - t0)
                if left <= 0:
                    return answer("hang", f"no complete answer within {within:g}s")
                s.settimeout(left)
                try:
                    chunk = s.recv(65536)
                except TimeoutError:
                    return answer("hang", f"no complete answer within {within:g}s")
                except OSError as exc:
                    if status is not None:
                        return answer("aborted", str(exc))
                    return answer("closed", f"{detail} recv: {exc}".strip())
                raw += chunk
                conn.receive_data(chunk)
            elif isinstance(event, h11.Response):
                status, headers = event.status_code, tuple(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return answer("complete")
            elif isinstance(event, h11.ConnectionClosed):
                return answer("aborted" if status is not None else "closed")
