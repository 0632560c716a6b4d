"""Bytes both sides of the data path write: status lines and request lines,
header blocks, the ``Date`` value (formatted at most once a second) and the
chunked-coding frames. Built once where they can be (STYLE §2.6b)."""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus

from auditproxy.wire import HeaderPairs

CRLF = b"\r\n"
LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_STATUS_LINES = {code: f"HTTP/1.1 {code} {phrase}\r\n" for code, phrase in _REASONS.items()}


def reason_for(status: int) -> str:
    return _REASONS.get(status, "")


def status_line(status: int, reason: str) -> str:
    """``HTTP/1.1 <status> <reason>``; the standard phrase when ``reason`` is empty."""
    if not reason or reason == _REASONS.get(status):
        line = _STATUS_LINES.get(status)
        if line is not None:
            return line
    return f"HTTP/1.1 {status} {reason or _REASONS.get(status, '')}\r\n"


def encode_head(first_line: str, headers: HeaderPairs | list[tuple[str, str]]) -> bytes:
    """The start line and the header block as sent (latin-1, as parsed)."""
    text = first_line + "".join([f"{n}: {v}\r\n" for n, v in headers]) + "\r\n"
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def chunk(data: bytes) -> bytes:
    """One chunk of the chunked coding."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class HttpDate:
    """The IMF-fixdate ``Date`` value, formatted once per second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._value = formatdate(second, usegmt=True)
        return self._value


http_date = HttpDate()
