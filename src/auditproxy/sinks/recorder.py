"""JSONL recorder: a bounded queue in front of one writer task, off the request path.

``submit`` only decides sampling and enqueues (``put_nowait``); a full queue drops the
exchange and counts it (``on_full: block`` waits instead, for test environments).
The writer task takes batches from the queue and hands each batch to one dedicated
thread, which converts the exchanges to redacted HAR entries, serialises them and
appends the lines, rotating files by size and pruning old ones past ``keep_files``.
Disk errors are counted and logged, never raised to the proxy. ``close()`` drains the
queue, flushes and fsyncs. Nothing that was queued is lost on a graceful stop.

Faults (a full disk, a read-only or deleted directory) never reach traffic: the
exchanges that cannot be written are dropped and counted
(``auditproxy_recorder_dropped_total{reason="write_error"}``), ``fault`` names the
error (``/readyz`` reports it), and a line cut short by the fault is cut off the
file again, so every file holds whole lines only. While faulted the writer tries
again every ``RETRY_SECONDS`` (traffic or not: it opens a file and checks that a
block can be allocated), and recording resumes once that succeeds. A file whose
name vanished (its directory deleted) is never written to: the writer notices
before each batch and at every check, and starts a new file, recreating the
directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import os
import random
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import structlog

from auditproxy.core.findings import Finding, RetryAdvice, is_compliant
from auditproxy.core.har import to_har_entry
from auditproxy.core.model import Exchange
from auditproxy.core.profile import Profile
from auditproxy.core.redact import Redaction
from auditproxy.sinks.metrics import Metrics

log = structlog.get_logger("auditproxy.recorder")

FILE_PREFIX = "auditproxy-"
FILE_SUFFIX = ".jsonl"
_NAME_RE = re.compile(r"^auditproxy-\d{8}T\d{6}-p(\d+)-(\d+)\.jsonl$")
_BATCH = 256  # exchanges per write call
RETRY_SECONDS = 1.0  # while faulted: how often the writer tries again; when healthy:
# how often an idle writer checks that its file is still there
_PROBE_BYTES = 16 * 1024  # space a recovery check allocates (and gives back)
_STOP = object()

Item = tuple[Exchange, tuple[Finding, ...], RetryAdvice, Profile]
# Compact UTF-8 JSON with its newline, as bytes in one go (the same text as
# json.dumps(ensure_ascii=False, separators=(",", ":"))).
_LINE = orjson.OPT_APPEND_NEWLINE


def _setting(settings: Any, name: str, default: Any) -> Any:
    value = getattr(settings, name, default)
    return default if value is None else value


class Recorder:
    """Records finished exchanges as JSON Lines (one HAR entry plus ``_audit`` per line)."""

    def __init__(
        self,
        settings: Any,
        metrics: Metrics,
        profile: Profile,
        *,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.profile = profile
        self.enabled = bool(_setting(settings, "enabled", False))
        self.dir = str(_setting(settings, "dir", "recordings"))
        self.sample = float(_setting(settings, "sample", 1.0))
        self.keep_noncompliant = bool(_setting(settings, "always_record_noncompliant", True))
        self.max_body = int(_setting(settings, "max_body", 64 * 1024))
        self.rotate_bytes = int(_setting(settings, "rotate_bytes", 100 * 1024 * 1024))
        self.keep_files = int(_setting(settings, "keep_files", 20))
        self.block = _setting(settings, "on_full", "drop") == "block"
        self.redaction = Redaction.build(
            headers=_setting(settings, "redact_headers", ()),
            json_fields=_setting(settings, "redact_json_fields", ()),
            query_params=_setting(settings, "redact_query_params", ()),
        )
        self._queue: asyncio.Queue[Any] = asyncio.Queue(
            maxsize=max(1, int(_setting(settings, "queue_size", 10000)))
        )
        self._rng = rng
        self._clock = clock
        self.retry_seconds = retry_seconds
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        # Writer-thread state (touched only by the single writer thread).
        self._fh: io.FileIO | None = None  # unbuffered: what write() took is on disk
        self._path: str | None = None
        self._size = 0  # bytes of whole lines in the current file
        self._seq = 0
        self._fault: str | None = None  # the error while the recorder cannot write
        self._retry_at = 0.0  # monotonic time of the next attempt while faulted
        self._pid = os.getpid()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Create the directory, open the first file and start the writer task."""
        if not self.enabled or self._task is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._open_quietly)
        self._task = asyncio.create_task(self._writer(), name="auditproxy-recorder")

    async def submit(
        self,
        exchange: Exchange,
        findings: tuple[Finding, ...],
        advice: RetryAdvice,
        profile: Profile | None = None,
    ) -> None:
        """Queue one exchange, audited with ``profile`` (the recorder's own when
        None); never blocks (unless on_full: block)."""
        if not self.enabled or self._closed:
            return
        sampled_out = self.sample < 1.0 and self._rng() >= self.sample
        if sampled_out and not (self.keep_noncompliant and not is_compliant(findings)):
            return  # sampled out: not a drop
        item: Item = (exchange, findings, advice, profile or self.profile)
        if self.block:
            await self._queue.put(item)
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.metrics.recorder_dropped.labels(reason="queue_full").inc()

    async def close(self) -> None:
        """Flush everything queued, fsync, close."""
        if self._closed:
            return
        self._closed = True
        if self._task is None or self._executor is None:
            return
        await self._queue.put(_STOP)
        await self._task
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._finish)
        self._executor.shutdown(wait=True)

    @property
    def writable(self) -> bool:
        """False while the last attempt to open or write a file failed."""
        return self._fault is None

    @property
    def fault(self) -> str | None:
        """What keeps the recorder from writing (``No space left on device``), or None."""
        return self._fault

    @property
    def path(self) -> str | None:
        """The file currently written to."""
        return self._path

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------------ writer task
    async def _writer(self) -> None:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        stop = False
        while not stop:
            batch: list[Item] = []
            try:
                async with asyncio.timeout(self.retry_seconds):
                    item = await self._queue.get()
            except TimeoutError:  # idle: see that the file is there, or retry a fault
                await loop.run_in_executor(self._executor, self._check)
                continue
            while True:
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
                if len(batch) >= _BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
            if batch:
                await loop.run_in_executor(self._executor, self._write_batch, batch)
        # Anything submitted while stopping is still written.
        rest: list[Item] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not _STOP:
                rest.append(item)
        if rest:
            await loop.run_in_executor(self._executor, self._write_batch, rest)

    # ------------------------------------------------------------------ writer thread
    def _line(self, item: Item) -> bytes:
        exchange, findings, advice, profile = item
        entry = to_har_entry(
            exchange,
            findings,
            advice,
            profile_name=profile.name,
            profile_version=profile.version,
            redaction=self.redaction,
            max_body=self.max_body,
        )
        return orjson.dumps(entry, option=_LINE)

    def _write_batch(self, batch: list[Item]) -> None:
        lines: list[bytes] = []
        for item in batch:
            try:
                lines.append(self._line(item))
            except Exception:  # a conversion bug must not stop the recorder
                log.exception("recorder_entry_failed", request_id=item[0].request_id)
                self.metrics.recorder_dropped.labels(reason="write_error").inc()
        if self._fault is not None and time.monotonic() < self._retry_at:
            self._drop(len(lines))  # still faulted: no attempt before the retry time
            return
        done = 0
        try:
            self._keep_file_linked()
            while done < len(lines):
                nxt = len(lines[done])
                if self._fh is None or (self._size and self._size + nxt > self.rotate_bytes):
                    self._rotate()
                # As many lines as fit in this file (at least one, however long).
                room, end = self.rotate_bytes - self._size, done
                while end < len(lines) and (end == done or len(lines[end]) <= room):
                    room -= len(lines[end])
                    end += 1
                self._append(b"".join(lines[done:end]))
                self.metrics.recorded.inc(end - done)
                done = end
        except OSError as exc:
            self._fail(exc)
            self._drop(len(lines) - done)
            return
        self._recovered()

    def _append(self, chunk: bytes) -> None:
        """Write ``chunk`` whole; on an error, cut the file back to its whole lines."""
        fh = self._fh
        assert fh is not None
        view = memoryview(chunk)
        try:
            while view:
                n = fh.write(view)
                if not n:
                    raise OSError(errno.EIO, "the file took no bytes")
                view = view[n:]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fh.fileno(), self._size)
            raise
        self._size += len(chunk)

    def _drop(self, lost: int) -> None:
        if lost:
            self.metrics.recorder_dropped.labels(reason="write_error").inc(lost)

    def _fail(self, exc: OSError) -> None:
        """Enter (or stay in) the fault state; the next attempt is one interval away."""
        fault = exc.strerror or str(exc) or type(exc).__name__
        if fault != self._fault:
            log.warning("recorder_write_failed", dir=self.dir, path=exc.filename or self._path,
                        error=fault)  # fmt: skip
        self._fault = fault
        self._retry_at = time.monotonic() + self.retry_seconds
        self._discard_file()

    def _discard_file(self) -> None:
        """Close the current file without flushing more into it; remove it when it
        holds no line (an attempt that failed leaves nothing behind)."""
        fh, self._fh = self._fh, None
        if fh is None:
            return
        with contextlib.suppress(OSError):
            fh.close()
        if self._size == 0 and self._path is not None:
            with contextlib.suppress(OSError):
                os.remove(self._path)

    def _recovered(self) -> None:
        if self._fault is not None:
            log.info("recorder_recovered", dir=self.dir, path=self._path, after=self._fault)
            self._fault = None

    def _keep_file_linked(self) -> None:
        """Start a new file when the current one's name no longer leads to it (the
        file or its directory was deleted): lines written there would be lost."""
        if self._fh is None or self._path is None:
            return
        try:
            on_disk = os.stat(self._path)
            held = os.fstat(self._fh.fileno())
            linked = (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)
        except (FileNotFoundError, NotADirectoryError):
            linked = False
        if not linked:
            log.warning("recorder_file_vanished", path=self._path, dir=self.dir)
            fh, self._fh = self._fh, None
            with contextlib.suppress(OSError):
                fh.close()

    def _check(self) -> None:
        """The idle writer's check: the file is still there; while faulted (once the
        retry time has come), whether a file can be opened and a block allocated."""
        if self._fault is not None and time.monotonic() < self._retry_at:
            return
        try:
            self._keep_file_linked()
            if self._fh is None:
                self._rotate()
            if self._fault is not None:
                self._probe_space()
        except OSError as exc:
            self._fail(exc)
            return
        self._recovered()

    def _probe_space(self) -> None:
        """Raise OSError (ENOSPC) when no block can be allocated past the file's end."""
        fh = self._fh
        assert fh is not None
        fallocate = getattr(os, "posix_fallocate", None)
        if fallocate is None:
            return
        try:
            fallocate(fh.fileno(), self._size, _PROBE_BYTES)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                return  # the filesystem cannot tell; the next write will
            raise
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fh.fileno(), self._size)

    def _open_quietly(self) -> None:
        try:
            self._rotate()
        except OSError as exc:
            self._fail(exc)

    def _rotate(self) -> None:
        """Close the current file (fsynced) and open the next one; prune old files."""
        self._close_file()
        os.makedirs(self.dir, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self._clock()))
        while True:
            self._seq += 1
            name = f"{FILE_PREFIX}{stamp}-p{self._pid}-{self._seq:06d}{FILE_SUFFIX}"
            path = os.path.join(self.dir, name)
            try:
                # Held open across batches (SIM115).
                self._fh = open(path, "xb", buffering=0)  # noqa: SIM115
            except FileExistsError:
                continue
            break
        self._path = path
        self._size = 0
        self._prune()

    def _close_file(self) -> None:
        fh, self._fh = self._fh, None
        if fh is None:
            return
        try:
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fh.close()
        if self._size == 0 and self._path is not None:
            # Nothing was recorded into it (a start that failed, an idle run): leave
            # no empty file behind.
            with contextlib.suppress(OSError):
                os.remove(self._path)

    def _prune(self) -> None:
        """Remove the oldest recordings past ``keep_files``; never another live writer's
        current file (with --workers, each process writes its own file)."""
        if self.keep_files <= 0:
            return
        try:
            names = sorted(n for n in os.listdir(self.dir) if _NAME_RE.match(n))
        except OSError:
            return
        newest: dict[str, str] = {}
        for n in names:
            m = _NAME_RE.match(n)
            assert m is not None
            newest[m.group(1)] = n  # sorted: the last one per pid wins
        protected = {self._path and os.path.basename(self._path)}
        for pid, n in newest.items():
            if int(pid) != self._pid and _alive(int(pid)):
                protected.add(n)
        excess = len(names) - self.keep_files
        for n in names:
            if excess <= 0:
                break
            if n in protected:
                continue
            with contextlib.suppress(OSError):
                os.remove(os.path.join(self.dir, n))
                excess -= 1

    def _finish(self) -> None:
        try:
            self._close_file()
        except OSError as exc:
            self._fail(exc)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
