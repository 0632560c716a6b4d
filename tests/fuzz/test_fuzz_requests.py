"""Property tests from the client side: arbitrary request bytes through the real proxy.

Whatever a client sends, the proxy stays up (/healthz 200), answers within its
timeouts with one well-formed HTTP/1.1 response (parsed by h11), logs no error,
and forwards only well-formed requests (the upstream parses them with h11)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import FUZZ, Fuzz
from tests.fuzz.harness import ANSWER_WITHIN, exchange
from tests.fuzz.strategies import (
    STANDARD,
    RawRequest,
    field_lines,
    origin_forms,
    raw_requests,
    request_framing,
    valid_fields,
)

pytestmark = pytest.mark.slow


@FUZZ
@given(data=st.data())
def test_any_request_gets_one_well_formed_answer_in_time(fuzz: Fuzz, data: st.DataObject) -> None:
    req: RawRequest = data.draw(raw_requests(fuzz.authority))
    before = len(fuzz.upstream.received)
    answer = exchange(fuzz.proxy.port, req.data, method=req.method.decode("latin-1"))
    context = f"{answer}\nfor {req.data[:600]!r}"
    assert answer.kind == "complete", context
    assert answer.status is not None, context
    assert 200 <= answer.status <= 599, context
    assert answer.seconds < ANSWER_WITHIN, context
    if req.lacks_host:
        assert 400 <= answer.status < 500, context
        assert len(fuzz.upstream.received) == before, f"forwarded without Host: {context}"
    fuzz.assert_sound(answer, req.data)


@FUZZ
@given(
    method=st.sampled_from(STANDARD),
    target=origin_forms(),
    fields=st.lists(valid_fields, max_size=5),
    body=st.binary(max_size=300),
    framing=st.sampled_from(["none", "length", "chunked"]),
)
def test_a_valid_request_is_forwarded_as_sent(
    fuzz: Fuzz,
    method: str,
    target: str,
    fields: list[tuple[bytes, bytes]],
    body: bytes,
    framing: str,
) -> None:
    """A well-formed request reaches the upstream with its method and target byte
    for byte, and the upstream's answer (200, the echo) reaches the client."""
    fields = [(n, v) for n, v in fields if n.lower() not in _FRAMING_NAMES]
    if method in ("GET", "HEAD", "DELETE", "OPTIONS", "TRACE") or framing == "none":
        framing, body = "none", b""
    framing_fields, payload = request_framing(body, framing)
    head = (f"{method} {target} HTTP/1.1\r\nHost: {fuzz.authority}\r\n".encode()
            + field_lines(fields + framing_fields) + b"\r\n")  # fmt: skip
    before = len(fuzz.upstream.received)
    answer = exchange(fuzz.proxy.port, head + payload, method=method)
    fuzz.assert_sound(answer, head)
    assert answer.kind == "complete", answer
    assert answer.status == 200, answer
    assert fuzz.upstream.received[before:] == [(method.encode(), target.encode())]
    if method != "HEAD":
        assert f'"received": {len(body)}'.encode() in answer.body, answer


_FRAMING_NAMES = {b"content-length", b"transfer-encoding", b"host", b"connection", b"expect",
                  b"upgrade", b"te", b"trailer", b"keep-alive", b"proxy-connection"}  # fmt: skip
