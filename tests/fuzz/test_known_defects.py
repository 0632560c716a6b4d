"""Each open defect of tests/fuzz/known.py as one exchange, a strict xfail on the
data path that has it: fixing the defect turns it into XPASS (a failure), so the
entry in known.py and its ``assume`` go with the fix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fuzz import known
from tests.fuzz.conftest import Fuzz, running
from tests.fuzz.harness import Script, exchange


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    """A proxy of its own: these requests hit defects, so its log is not checked
    at the end (each test checks what it needs)."""
    with running(tmp_path_factory.mktemp("known"), clean_log=False) as env:
        yield env


def _get(fuzz: Fuzz, target: str, *fields: str, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *fields, "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _aiohttp_defect(target: str, defect: Callable[..., bool]) -> Any:
    mark = pytest.mark.xfail(known.AIOHTTP, reason=known.why(defect), strict=True)
    return pytest.param(target, marks=mark, id=defect.__name__)


@pytest.mark.parametrize(
    "target",
    [
        _aiohttp_defect("/q?", known.empty_query_dropped),
        _aiohttp_defect("/a%0Ab", known.encoded_newline_in_path),
    ],
)
def test_a_valid_target_is_forwarded_as_sent(fuzz: Fuzz, target: str) -> None:
    before = len(fuzz.upstream.received)
    answer = exchange(fuzz.proxy.port, _get(fuzz, target, f"Host: {fuzz.authority}"))
    assert answer.status == 200
    assert fuzz.upstream.received[before:] == [(b"GET", target.encode())]


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


@pytest.mark.xfail(reason=known.why(known.control_in_head), strict=True)
def test_a_control_byte_in_the_upstream_reason_never_reaches_the_client(fuzz: Fuzz) -> None:
    fuzz.upstream.scripts[-3] = Script(b"HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok")
    answer = exchange(fuzz.proxy.port, _get(fuzz, "/fz/-3", f"Host: {fuzz.authority}"))
    assert answer.kind == "complete"
    assert answer.status in (200, 502)


@pytest.mark.xfail(known.AIOHTTP, reason=known.why(known.non_ascii_expect), strict=True)
def test_an_expect_value_outside_ascii_is_answered_cleanly(fuzz: Fuzz) -> None:
    data = b"GET /e HTTP/1.1\r\nHost: " + fuzz.authority.encode() + b"\r\nExpect: \xe4\r\n\r\n"
    answer = exchange(fuzz.proxy.port, data)
    fuzz.assert_sound(answer, data)
    assert answer.status in (200, 417)
