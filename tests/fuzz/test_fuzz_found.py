"""Inputs the fuzzing found mishandled on the aiohttp data path, each pinned as
one request: an empty query and an encoded newline in the path are forwarded as
sent, an extension method with a target outside ASCII gets 400 (not a malformed
request line forwarded), an Expect value outside ASCII is answered cleanly."""

from __future__ import annotations

import pytest

from tests.fuzz.conftest import Fuzz
from tests.fuzz.harness import exchange, get_bytes

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
