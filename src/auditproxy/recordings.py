"""Readers for recordings: our JSON Lines and HAR 1.2 documents from other tools.

``read_recording(path)`` yields, in file order, either an ``Entry`` (a parsed entry
and where it came from: ``file:line`` for JSONL, ``file#index`` for HAR) or a
``Problem``. A problem names the same place and says what is wrong; ``fatal`` is
False only for a torn last line (a crash mid-write), which readers skip with a
warning. Reading never raises for bad input.
"""

from __future__ import annotations

import calendar
import contextlib
import gzip
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
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


# A JSON value's type as JSON names it (messages speak of JSON, not Python).
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number",
               bool: "boolean", type(None): "null"}  # fmt: skip
RECORDING_SUFFIXES = (".jsonl", ".jsonl.gz", ".har", ".har.gz")
_RECORDER_NAME = re.compile(r"^auditproxy-(\d{8}T\d{6})-p\d+-\d+\.jsonl(\.gz)?$")
_SNIFF_BYTES = 8192
_BAD_LINES_BEFORE_GIVING_UP = 5


def json_type(value: object) -> str:
    """``object``, ``array``, ``string``, ``number``, ``boolean`` or ``null``."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


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


def _binary(head: bytes) -> bool:
    """True when the first bytes of a file cannot be UTF-8 JSON text."""
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 3  # not just a character cut at the sniff boundary
    return False


def _read_jsonl(path: str, fh: IO[bytes], progress: Progress | None) -> Iterator[Entry | Problem]:
    head = fh.peek(_SNIFF_BYTES)[:_SNIFF_BYTES] if hasattr(fh, "peek") else b""
    if _binary(head):
        yield Problem(path, "not a JSON Lines recording or HAR file (binary data)")
        return
    lineno = offset = 0
    pending: Problem | None = None
    # Until a line parses, bad lines are held back: a file whose first lines are all
    # not JSON is clearly not a recording and gets one line, not one per line.
    held: list[Problem] = []
    seen_entry = False
    for raw in fh:
        lineno += 1
        start = offset
        offset += len(raw)
        if progress is not None:
            progress.done += len(raw)
        if pending is not None:
            if seen_entry:
                yield pending  # a bad line that turned out not to be the last one
            else:
                held.append(pending)
                if len(held) >= _BAD_LINES_BEFORE_GIVING_UP:
                    first = f"{held[0].source}: {held[0].message}"
                    yield Problem(path, f"not a JSON Lines recording: its first {len(held)} "
                                  f"lines are not JSON ({first})")  # fmt: skip
                    return
            pending = None
        text = raw.strip()
        if not text:
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            if not raw.endswith(b"\n"):
                yield from held
                held = []
                yield Problem(where, f"torn last line skipped ({len(raw)} bytes, {exc})", False)
            else:
                pending = Problem(where, f"malformed JSON line: {exc}")
            continue
        yield from held
        held = []
        seen_entry = True
        if not isinstance(obj, dict):
            yield Problem(where, f"line is a JSON {json_type(obj)}, not a HAR entry object")
            continue
        yield Entry(where, obj, start, len(raw))
    yield from held
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
            yield Problem(where, f"entry is a JSON {json_type(item)}, not an object")


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


def _time_key(path: str) -> tuple[float, str]:
    """When a recording file was started: the recorder's name stamp, else its mtime."""
    m = _RECORDER_NAME.match(os.path.basename(path))
    if m:
        return float(calendar.timegm(time.strptime(m.group(1), "%Y%m%dT%H%M%S"))), path
    try:
        return os.path.getmtime(path), path
    except OSError:
        return 0.0, path


def expand_inputs(paths: Iterable[str]) -> tuple[list[str], list[Problem]]:
    """Files for the given paths: a directory stands for every recording under it
    (``*.jsonl``, ``*.har``, optionally ``.gz``, recursively, so a ``--workers``
    recording with its ``worker-N/`` folders is one argument), in time order.
    A directory without recordings is a (non-fatal) problem."""
    files: list[str] = []
    problems: list[Problem] = []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        found = [
            os.path.join(root, name)
            for root, _dirs, names in os.walk(path)
            for name in names
            if name.endswith(RECORDING_SUFFIXES)
        ]
        if not found:
            problems.append(Problem(path, "directory holds no recordings "
                                    "(*.jsonl, *.har, optionally .gz)", fatal=False))  # fmt: skip
        files.extend(sorted(found, key=_time_key))
    return files, problems
