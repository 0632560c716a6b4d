"""Defects the fuzz tests found that are not fixed yet.

Each predicate names one open defect, where it is and which inputs hit it; the
property tests ``assume`` those inputs away so they keep exploring, and
tests/fuzz/test_known_defects.py holds each one as a strict xfail: once the
defect is fixed that test passes, fails as XPASS, and the entry here goes.
"""

from __future__ import annotations

import re
from collections.abc import Callable


def why(defect: Callable[..., bool]) -> str:
    """The defect's description on one line (an xfail reason)."""
    return " ".join((defect.__doc__ or defect.__name__).split())


def hostless_request_forwarded() -> bool:
    """http1 path (the upstream client adds a Host from the base URL): an HTTP/1.1
    request without Host is forwarded instead of being answered 400 (RFC 9112 §3.2:
    a server MUST answer 400 to an HTTP/1.1 request that lacks Host)."""
    return True


def two_digit_status_forwarded(response: bytes) -> bool:
    """http1 client (llhttp's response parser): an upstream status ``099`` is passed
    on as ``HTTP/1.1 99``, a malformed status line (status-code is 3DIGIT,
    RFC 9112 §4), instead of being answered 502."""
    return re.search(rb"(^|\n)HTTP/1\.[01] 0", response) is not None


def control_in_head(response: bytes) -> bool:
    """http1 path (the upstream's reason phrase and field values are passed on as
    sent): a control byte in the upstream's status line or a field value
    (``200 O\\x00K``, ``X: \\x01``; RFC 9110 §5.5, RFC 9112 §4 allow HTAB, SP, VCHAR,
    obs-text) reaches the client as a malformed head, instead of a 502, a cleaned
    reason or a dropped field."""
    parts = response.split(b"\r\n\r\n")
    heads = parts[:2] if response.startswith(b"HTTP/1.1 1") else parts[:1]
    return any(_CONTROL.search(h) for h in heads)


_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)")
