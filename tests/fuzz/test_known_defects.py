"""Each open defect of tests/fuzz/known.py as one exchange, a strict xfail on the
data path that has it: fixing the defect turns it into XPASS (a failure), so the
entry in known.py and its ``assume`` go with the fix."""

from __future__ import annotations

import pytest

from tests.fuzz import known
from tests.fuzz.conftest import Fuzz
from tests.fuzz.harness import Script, exchange


def _get(fuzz: Fuzz, target: str, *fields: str, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *fields, "", ""]
    return "\r\n".join(lines).encode("latin-1")


@pytest.mark.xfail(known.AIOHTTP, reason=known.why(known.empty_query_dropped), strict=True)
def test_an_empty_query_is_forwarded(fuzz: Fuzz) -> None:
    before = len(fuzz.upstream.received)
    answer = exchange(fuzz.proxy.port, _get(fuzz, "/q?", f"Host: {fuzz.authority}"))
    assert answer.status == 200
    assert fuzz.upstream.received[before:] == [(b"GET", b"/q?")]


@pytest.mark.xfail(known.AIOHTTP, reason=known.why(known.lax_extension_method_parse), strict=True)
def test_an_extension_method_with_a_non_ascii_target_gets_400(fuzz: Fuzz) -> None:
    data = b"FROB /\xc2\x80 HTTP/1.1\r\nHost: " + fuzz.authority.encode() + b"\r\n\r\n"
    answer = exchange(fuzz.proxy.port, data)
    fuzz.upstream.rejected.clear()
    assert answer.status == 400


@pytest.mark.xfail(known.HTTP1, reason=known.why(known.hostless_request_forwarded), strict=True)
def test_an_http_1_1_request_without_host_gets_400(fuzz: Fuzz) -> None:
    before = len(fuzz.upstream.received)
    answer = exchange(fuzz.proxy.port, _get(fuzz, "/nohost"))
    assert answer.status == 400
    assert len(fuzz.upstream.received) == before


@pytest.mark.xfail(reason=known.why(known.two_digit_status_forwarded), strict=True)
def test_a_status_099_from_the_upstream_gets_502(fuzz: Fuzz) -> None:
    fuzz.upstream.scripts[-2] = Script(b"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n")
    answer = exchange(fuzz.proxy.port, _get(fuzz, "/fz/-2", f"Host: {fuzz.authority}"))
    assert (answer.kind, answer.status) == ("complete", 502)
