"""Property tests from the upstream side: an upstream that answers with bytes
hypothesis chose (status line, header section, framing, and whether it then
closes or hangs).

The client always gets one well-formed HTTP/1.1 response within the timeouts, or
(only when the upstream broke its response after the head was passed on) a head
followed by a closed connection, never a truncated body that looks whole; a
valid upstream response reaches the client with its status and body unchanged;
the proxy stays up and logs no error."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import FUZZ, Fuzz
from tests.fuzz.harness import ANSWER_WITHIN, Script, exchange
from tests.fuzz.strategies import RawResponse, raw_responses

_ids = itertools.count(1)

pytestmark = pytest.mark.slow


@FUZZ
@given(response=raw_responses(), method=st.sampled_from(["GET", "GET", "GET", "HEAD", "POST"]))
def test_any_upstream_answer_reaches_the_client_well_formed(
    fuzz: Fuzz, response: RawResponse, method: str
) -> None:
    n = next(_ids)
    fuzz.upstream.scripts[n] = Script(response.data, keep_open=response.keep_open)
    body = b"{}" if method == "POST" else b""
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    request = (f"{method} /fz/{n} HTTP/1.1\r\nHost: {fuzz.authority}\r\n{length}\r\n").encode()
    answer = exchange(fuzz.proxy.port, request + body, method=method)
    context = f"{answer}\nfor upstream bytes {response.data[:600]!r}"
    del fuzz.upstream.scripts[n]
    assert answer.kind in ("complete", "aborted"), context
    assert answer.seconds < ANSWER_WITHIN, context
    if response.valid and method != "HEAD":  # a body after a HEAD answer is junk
        assert answer.kind == "complete", context
        assert answer.status == response.status, context
        assert answer.body == response.body, context
    fuzz.assert_sound(answer, response.data)
