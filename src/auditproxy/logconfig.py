"""structlog, configured once: contextvars merge -> level -> ISO timestamp -> renderer.

JSON lines by default (``log.format: json``), a human console renderer with
``log.format: console``. The level filter is compiled into the bound logger, so a
disabled level costs one method call.

Every line goes through one ``LineWriter``. The per-exchange events
(``exchange_completed``, ``finding``) take a fast path in JSON mode: the sink
builds the event dict itself and the writer buffers the line, flushing it on a
short timer (``FLUSH_INTERVAL``), when the buffer is large, before any other log
line (so the order is kept), at shutdown (``flush()``) and at exit. All other
events are written and flushed at once. While the structlog processors are
replaced (``structlog.testing.capture_logs``) the fast path is off and the
per-exchange events go through structlog like every other event.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

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
    """structlog logger writing rendered lines through the shared ``LineWriter``."""

    def __init__(self, writer: LineWriter) -> None:
        self._writer = writer

    def msg(self, message: str) -> None:
        self._writer.write_now(message + "\n")

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class _State:
    def __init__(self) -> None:
        self.writer: LineWriter | None = None
        self.processors: list[Any] = [None]
        self.renderer: Any = None
        self.level = logging.INFO
        self.fast = False


_state = _State()


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
_dumps: Callable[[Any], str] = json.JSONEncoder().encode
_contextvars = structlog.contextvars.get_contextvars
_get_config = structlog.get_config


Emit = Callable[[str, str, dict[str, Any]], None]


def fast_emitter() -> Emit | None:
    """``emit(event, level_name, fields)`` for the per-exchange events, or None when
    they must go through structlog (console format, not configured here, or the
    processors replaced as ``capture_logs`` does)."""
    if not _state.fast:
        return None
    procs = _get_config()["processors"]
    if procs is not _state.processors or procs[-1] is not _state.renderer:
        return None
    return _emit


def level_enabled(level: int) -> bool:
    """Whether events at ``level`` (a ``logging`` level) pass the configured filter."""
    return level >= _state.level


def _emit(event: str, level: str, fields: dict[str, Any]) -> None:
    ctx = _contextvars()
    if ctx:
        fields = {**ctx, **fields}
    fields["event"] = event
    fields["level"] = level
    fields["timestamp"] = _clock.now()
    try:
        line = _dumps(fields)
    except (TypeError, ValueError):
        line = json.dumps(fields, default=repr)
    writer = _state.writer
    if writer is not None:
        writer.write(line + "\n")


class _CtxPrefix:
    """``{`` plus the bound context vars as JSON members, for the last context seen."""

    __slots__ = ("ctx", "own", "prefix")

    def __init__(self) -> None:
        self.ctx: dict[str, Any] = {}
        self.own: frozenset[str] = frozenset()
        self.prefix = "{"

    def get(self, ctx: dict[str, Any], own: frozenset[str]) -> str:
        if ctx != self.ctx or own is not self.own:
            # The event's own fields win over context vars, as in structlog.
            kept = {k: v for k, v in ctx.items() if k not in own}
            try:
                text = _dumps(kept)
            except (TypeError, ValueError):
                text = json.dumps(kept, default=repr)
            self.prefix = "{" + text[1:-1] + "," if kept else "{"
            self.ctx, self.own = ctx, own
        return self.prefix


_ctx_prefix = _CtxPrefix()


def emit_members(members: str, tail: str, own: frozenset[str]) -> None:
    """Write one JSON line from pre-encoded members: the bound context vars (minus
    the names in ``own``), then ``members`` (the event's own fields), then ``tail``
    (``"event":...,"level":...``), then the timestamp. Only call it after
    ``fast_emitter()`` returned the fast path."""
    ctx = _contextvars()
    prefix = _ctx_prefix.get(ctx, own) if ctx else "{"
    writer = _state.writer
    if writer is not None:
        writer.write(f'{prefix}{members},{tail},"timestamp":"{_clock.now()}"}}\n')


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
        else structlog.processors.JSONRenderer()
    )
    writer = LineWriter(stream or sys.stdout)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=lambda *args: _WriterLogger(writer),
        cache_logger_on_first_use=True,
    )
    _state.writer = writer
    _state.processors = processors
    _state.renderer = renderer
    _state.level = _LEVELS[level]
    _state.fast = fmt != "console"
    logging.basicConfig(level=max(_LEVELS[level], logging.WARNING), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s", force=True)  # fmt: skip
