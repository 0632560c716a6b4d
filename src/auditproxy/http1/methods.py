"""Extension methods on llhttp, which knows a fixed list of methods: where the
refused message starts, as llhttp itself delimits the messages before it, so its
method token can be swapped for one llhttp knows (the parse stays llhttp's)."""

from __future__ import annotations

import contextlib
import re

import httptools

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2


def message_start(buf: bytes, done: int) -> int:
    """Offset in ``buf`` (which starts at a message boundary) where the message
    after the first ``done`` messages starts, as llhttp itself delimits them."""
    if done == 0:
        return 0
    lo, hi = 0, len(buf)
    while lo < hi:  # smallest prefix in which ``done`` messages are complete
        mid = (lo + hi) // 2
        if _completed(buf[:mid]) >= done:
            hi = mid
        else:
            lo = mid + 1
    return lo


class _Counter:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def on_message_complete(self) -> None:
        self.n += 1


def _completed(data: bytes) -> int:
    counter = _Counter()
    parser = httptools.HttpRequestParser(counter)
    with contextlib.suppress(httptools.HttpParserError, httptools.HttpParserUpgrade):
        parser.feed_data(data)
    return counter.n
