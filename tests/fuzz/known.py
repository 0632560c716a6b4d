"""Defects the fuzz tests found that are not fixed yet, by data path.

The traffic port is served either by aiohttp (``auditproxy.http1`` absent) or by
the http1 data path. Each predicate below names one open defect, where it is and
which inputs hit it; the property tests ``assume`` those inputs away so they keep
exploring, and tests/fuzz/test_known_defects.py holds each one as a strict xfail:
once the defect is fixed that test passes, fails as XPASS, and the entry here
goes.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable

HTTP1 = importlib.util.find_spec("auditproxy.http1") is not None
AIOHTTP = not HTTP1

# The methods aiohttp's fast parser knows; any other sends the connection to its
# pure-Python parser (server.py), which is laxer.
_FAST = {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE"}


def why(defect: Callable[..., bool]) -> str:
    """The defect's description on one line (an xfail reason)."""
    return " ".join((defect.__doc__ or defect.__name__).split())


def empty_query_dropped(target: bytes) -> bool:
    """aiohttp path, upstream.py (``URL(base + target, encoded=True)``): a target
    with an empty query (``/a?``) is forwarded as ``/a``."""
    return AIOHTTP and target.endswith(b"?")


def lax_extension_method_parse(method: bytes, target: bytes) -> bool:
    """aiohttp path, server.py (the parser swap for extension methods): the
    pure-Python parser accepts bytes outside ASCII or controls in the target, and
    the malformed request line is forwarded (the upstream rejects it: 502)."""
    return AIOHTTP and method not in _FAST and any(b >= 0x7F or b < 0x21 for b in target)


def hostless_request_forwarded() -> bool:
    """http1 path: an HTTP/1.1 request without Host is forwarded (the upstream
    client adds one) instead of being answered 400 (RFC 9112 §3.2)."""
    return HTTP1


def two_digit_status_forwarded(response: bytes) -> bool:
    """Both paths (the upstream response parser, llhttp in either): an upstream
    status ``099`` is passed on as ``HTTP/1.1 99``, a malformed status line
    (status-code is 3DIGIT, RFC 9112 §4), instead of being answered 502."""
    return re.search(rb"(^|\n)HTTP/1\.[01] 0", response) is not None


def control_in_head(response: bytes) -> bool:
    """Both paths (the upstream's reason phrase and field values are passed on as
    sent): a control byte in the upstream's status line or a field value
    (``200 O\x00K``, ``X: \x01``; RFC 9110 §5.5, RFC 9112 §4 allow HTAB, SP, VCHAR,
    obs-text) gives, on the aiohttp path, no answer at all and a connection left
    open past ``total``; on the http1 path a malformed head to the client. Neither
    is a 502, a cleaned reason or a dropped field."""
    parts = response.split(b"\r\n\r\n")
    heads = parts[:2] if response.startswith(b"HTTP/1.1 1") else parts[:1]
    return any(_CONTROL.search(h) for h in heads)


_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)")


def encoded_newline_in_path(target: bytes) -> bool:
    """aiohttp path, app.py (the catch-all route ``/{tail:.*}``: ``.`` does not
    match a newline): a path with ``%0A`` gets aiohttp's plain-text 404, never
    forwarded, counted or recorded."""
    return AIOHTTP and b"%0a" in target.split(b"?")[0].lower()


def non_ascii_expect(fields: tuple[tuple[bytes, bytes], ...]) -> bool:
    """aiohttp path, app.py (aiohttp's Expect handling): an ``Expect`` value with
    bytes outside ASCII raises inside aiohttp: a plain-text 500, a traceback in the
    log, nothing counted or recorded (``Expect: foo`` gets aiohttp's plain 417)."""
    return AIOHTTP and any(n.lower() == b"expect" and max(v, default=0) >= 0x80 for n, v in fields)
