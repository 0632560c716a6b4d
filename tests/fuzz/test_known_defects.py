"""Each open defect of tests/fuzz/known.py as one exchange, a strict xfail: fixing
the defect turns it into XPASS (a failure), so the entry in known.py and its
``assume`` go with the fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz import known
from tests.fuzz.conftest import Fuzz, running
from tests.fuzz.harness import Script, exchange, get_bytes


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    """A proxy of its own: these requests hit defects, so its log is not checked
    at the end (each test checks what it needs)."""
    with running(tmp_path_factory.mktemp("known"), clean_log=False) as env:
        yield env


@pytest.mark.xfail(reason=known.why(known.hostless_request_forwarded), strict=True)
def test_an_http_1_1_request_without_host_gets_400(fuzz: Fuzz) -> None:
    before = len(fuzz.upstream.received)
    answer = exchange(fuzz.proxy.port, get_bytes("/nohost"))
    assert answer.status == 400
    assert len(fuzz.upstream.received) == before


@pytest.mark.xfail(reason=known.why(known.two_digit_status_forwarded), strict=True)
def test_a_status_099_from_the_upstream_gets_502(fuzz: Fuzz) -> None:
    fuzz.upstream.scripts[-2] = Script(b"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n")
    answer = exchange(fuzz.proxy.port, get_bytes("/fz/-2", f"Host: {fuzz.authority}"))
    assert (answer.kind, answer.status) == ("complete", 502)


@pytest.mark.xfail(reason=known.why(known.control_in_head), strict=True)
def test_a_control_byte_in_the_upstream_reason_never_reaches_the_client(fuzz: Fuzz) -> None:
    fuzz.upstream.scripts[-3] = Script(b"HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok")
    answer = exchange(fuzz.proxy.port, get_bytes("/fz/-3", f"Host: {fuzz.authority}"))
    assert answer.kind == "complete"
    assert answer.status in (200, 502)
