"""structlog, configured once: contextvars merge -> level -> ISO timestamp -> renderer.

JSON lines by default (``log.format: json``), a human console renderer with
``log.format: console``. The level filter is compiled into the bound logger, so a
disabled level costs one method call.

JSON is encoded by orjson. Every line goes through one ``LineWriter``: the
per-exchange events (``exchange_completed``, ``finding``, logger
``auditproxy.exchange``) are buffered and flushed on a short timer
(``FLUSH_INTERVAL``), when the buffer is large, before any other log line (so
the order is kept), at shutdown (``flush()``) and at exit. All other events are
written and flushed at once.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import time
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

FLUSH_INTERVAL = 0.1  # seconds a buffered exchange line may wait
FLUSH_BYTES = 64 * 1024  # buffered characters that force a flush


class LineWriter:
    """Buffers lines for one text stream. Thread-safe; ``write_now`` keeps order."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._buf: list[str] = []
        self._size = 0
        self._armed = False
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        """Buffer one line (with its newline); flushed within ``FLUSH_INTERVAL``."""
        with self._lock:
            self._buf.append(line)
            self._size += len(line)
            if self._size < FLUSH_BYTES:
                if self._armed:
                    return
                try:
                    asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self._timer)
                except RuntimeError:  # no event loop in this thread: write through
                    pass
                else:
                    self._armed = True
                    return
            self._flush_locked()

    def write_now(self, line: str) -> None:
        """Write every buffered line and then ``line``, and flush the stream."""
        with self._lock:
            self._buf.append(line)
            self._flush_locked()

    def write_line(self, message: str) -> None:
        self.write(message + "\n")

    def write_line_now(self, message: str) -> None:
        self.write_now(message + "\n")

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _timer(self) -> None:
        with self._lock:
            self._armed = False
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._buf:
            text = "".join(self._buf)
            self._buf = []
            self._size = 0
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # closed or broken stream: drop, never raise
                pass


class _WriterLogger:
    """structlog logger writing rendered lines through the shared ``LineWriter``:
    buffered for the per-exchange events, written at once for every other."""

    def __init__(self, writer: LineWriter, *, buffered: bool) -> None:
        self.msg = writer.write_line if buffered else writer.write_line_now

    def __getattr__(self, name: str) -> Any:  # debug, info, warning, error, ...
        return self.msg


class _State:
    def __init__(self) -> None:
        self.writer: LineWriter | None = None


_state = _State()
EXCHANGE_LOGGER = "auditproxy.exchange"  # the per-exchange events: buffered


class _Clock:
    """ISO-8601 UTC timestamps like structlog's ``TimeStamper(fmt="iso", utc=True)``,
    with the part up to the second formatted once per second."""

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def now(self) -> str:
        t = time.time()
        sec = int(t)
        if sec != self.second:
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            self.second = sec
        return f"{self.prefix}.{int((t - sec) * 1_000_000):06d}Z"


_clock = _Clock()


def _timestamp(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["timestamp"] = _clock.now()
    return event


def _orjson(obj: Any, **kw: Any) -> str:
    return orjson.dumps(obj, **kw).decode()


def flush() -> None:
    """Write out buffered log lines (called at shutdown and at exit)."""
    if _state.writer is not None:
        _state.writer.flush()


atexit.register(flush)


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Configure structlog (and route aiohttp's stdlib warnings to the same stream)."""
    flush()
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer(serializer=_orjson)
    )
    writer = LineWriter(stream or sys.stdout)
    buffered = _WriterLogger(writer, buffered=True)
    immediate = _WriterLogger(writer, buffered=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _timestamp,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=lambda *args: buffered if args == (EXCHANGE_LOGGER,) else immediate,
        cache_logger_on_first_use=True,
    )
    _state.writer = writer
    logging.basicConfig(level=max(_LEVELS[level], logging.WARNING), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s", force=True)  # fmt: skip
