"""Readers for recordings: our JSON Lines and HAR 1.2 documents from other tools.

``read_recording(path)`` yields, in file order, either an ``Entry`` (a parsed entry
and where it came from: ``file:line`` for JSONL, ``file#index`` for HAR) or a
``Problem``. A problem names the same place and says what is wrong; ``fatal`` is
False only for a torn last line (a crash mid-write), which readers skip with a
warning. Reading never raises for bad input.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any


@dataclass(frozen=True, slots=True)
class Entry:
    source: str
    entry: dict[str, Any]
    offset: int = -1  # byte offset of the JSONL line (-1 for HAR entries)
    length: int = 0


@dataclass(frozen=True, slots=True)
class Problem:
    source: str
    message: str
    fatal: bool = True


@dataclass(slots=True)
class Progress:
    """Bytes read so far across files, for a progress bar."""

    done: int = 0
    total: int = 0


def _is_gzip(path: str) -> bool:
    return path.endswith(".gz")


def _open(path: str) -> IO[bytes]:
    if _is_gzip(path):
        return gzip.GzipFile(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _sniff(path: str) -> str:
    """``"har"`` or ``"jsonl"`` from the first line of the file."""
    if path.endswith((".har", ".har.gz")):
        return "har"
    with _open(path) as fh:
        first = fh.readline(1 << 20).strip()
    if not first:
        return "jsonl"
    try:
        obj = json.loads(first)
    except ValueError:
        # A pretty-printed HAR starts with "{" alone or with the "log" member; anything
        # else that does not parse is a (torn or malformed) JSONL line.
        compact = first.replace(b" ", b"").replace(b"\t", b"")
        return "har" if compact == b"{" or compact.startswith(b'{"log"') else "jsonl"
    return "har" if isinstance(obj, dict) and "log" in obj else "jsonl"


def _read_jsonl(path: str, fh: IO[bytes], progress: Progress | None) -> Iterator[Entry | Problem]:
    lineno = 0
    offset = 0
    pending: Problem | None = None
    for raw in fh:
        lineno += 1
        start = offset
        offset += len(raw)
        if progress is not None:
            progress.done += len(raw)
        if pending is not None:
            yield pending  # a bad line that turned out not to be the last one
            pending = None
        text = raw.strip()
        if not text:
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            if not raw.endswith(b"\n"):
                yield Problem(where, f"torn last line skipped ({len(raw)} bytes, {exc})", False)
            else:
                pending = Problem(where, f"malformed JSON line: {exc}")
            continue
        if not isinstance(obj, dict):
            yield Problem(where, f"line is a JSON {type(obj).__name__}, not a HAR entry object")
            continue
        yield Entry(where, obj, start, len(raw))
    if pending is not None:
        yield pending


def _read_har(path: str, fh: IO[bytes], progress: Progress | None) -> Iterator[Entry | Problem]:
    data = fh.read()
    if progress is not None:
        progress.done += len(data)
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        yield Problem(f"{path}:{exc.lineno}", f"not valid JSON: {exc.msg} (column {exc.colno})")
        return
    except UnicodeDecodeError as exc:
        yield Problem(path, f"not UTF-8 text: {exc}")
        return
    log = doc.get("log") if isinstance(doc, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        yield Problem(path, "not a HAR file: log.entries is missing or not a list")
        return
    for i, item in enumerate(entries):
        where = f"{path}#{i}"
        if isinstance(item, dict):
            yield Entry(where, item)
        else:
            yield Problem(where, f"entry is a JSON {type(item).__name__}, not an object")


def read_recording(path: str, progress: Progress | None = None) -> Iterator[Entry | Problem]:
    """Every entry of one recording file (JSONL, HAR, optionally gzip-compressed)."""
    try:
        kind = _sniff(path)
        fh = _open(path)
    except OSError as exc:
        yield Problem(path, f"cannot read: {exc.strerror or exc}")
        return
    try:
        with fh:
            reader = _read_har if kind == "har" else _read_jsonl
            yield from reader(path, fh, progress)
    except (OSError, EOFError) as exc:
        yield Problem(path, f"read failed: {exc}")


def total_size(paths: list[str]) -> int:
    """Sum of the files' sizes on disk (0 for unreadable ones)."""
    total = 0
    for p in paths:
        with contextlib.suppress(OSError):
            total += os.path.getsize(p)
    return total
