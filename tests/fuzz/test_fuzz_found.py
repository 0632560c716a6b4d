"""Inputs the fuzzing found mishandled, each pinned as one request: an empty query
and an encoded newline in the path are forwarded as sent, an extension method
with a target outside ASCII gets 400 (not a malformed request line forwarded), an
Expect value outside ASCII is answered cleanly, an HTTP/1.1 request without Host
gets 400 (RFC 9112 §3.2), and an upstream status ``099`` or a control byte in the
upstream's head is a 502, never a malformed head passed on."""

from __future__ import annotations

import pytest

from tests.fuzz.conftest import Fuzz
from tests.fuzz.harness import Script, exchange, get_bytes

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "target",
    [
        "/q?",
        "/a%0Ab",
    ],
)
def test_a_valid_target_is_forwarded_as_sent(fuzz: Fuzz, target: str) -> None:
    before = len(fuzz.upstream.received)
    answer = exchange(fuzz.proxy.port, get_bytes(target, f"Host: {fuzz.authority}"))
    assert answer.status == 200
    assert fuzz.upstream.received[before:] == [(b"GET", target.encode())]


def test_an_extension_method_with_a_non_ascii_target_gets_400(fuzz: Fuzz) -> None:
    data = b"FROB /\xc2\x80 HTTP/1.1\r\nHost: " + fuzz.authority.encode() + b"\r\n\r\n"
    answer = exchange(fuzz.proxy.port, data)
    fuzz.assert_sound(answer, data)
    assert answer.status == 400


def test_an_expect_value_outside_ascii_is_answered_cleanly(fuzz: Fuzz) -> None:
    data = b"GET /e HTTP/1.1\r\nHost: " + fuzz.authority.encode() + b"\r\nExpect: \xe4\r\n\r\n"
    answer = exchange(fuzz.proxy.port, data)
    fuzz.assert_sound(answer, data)
    assert answer.status in (200, 417)


def test_an_http_1_1_request_without_host_gets_400(fuzz: Fuzz) -> None:
    before = len(fuzz.upstream.received)
    answer = exchange(fuzz.proxy.port, get_bytes("/nohost"))
    assert answer.status == 400
    assert len(fuzz.upstream.received) == before


def test_a_status_099_from_the_upstream_gets_502(fuzz: Fuzz) -> None:
    fuzz.upstream.scripts[-2] = Script(b"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n")
    answer = exchange(fuzz.proxy.port, get_bytes("/fz/-2", f"Host: {fuzz.authority}"))
    assert (answer.kind, answer.status) == ("complete", 502)


def test_a_control_byte_in_the_upstream_reason_never_reaches_the_client(fuzz: Fuzz) -> None:
    fuzz.upstream.scripts[-3] = Script(b"HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok")
    answer = exchange(fuzz.proxy.port, get_bytes("/fz/-3", f"Host: {fuzz.authority}"))
    assert (answer.kind, answer.status) == ("complete", 502)
