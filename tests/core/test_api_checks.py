"""Checks of core/api_checks.py where the profile examples cannot show enough:
credentials never echoed, and judging what a recording kept."""

from __future__ import annotations

import dataclasses

import pytest

from auditproxy.core.engine import Profile, audit
from auditproxy.core.model import Body
from auditproxy.core.redact import REDACTED

from .conftest import IMF_DATE, make_exchange


@pytest.mark.parametrize(
    "value", ["s3cr3t-v4lue", "Token s3cr3t-v4lue", "x" * 30 + " s3cr3t-v4lue"]
)
def test_authorization_findings_never_echo_credentials(digg: Profile, value: str) -> None:
    """SAK.10 names at most a short scheme; a bare credential is not shown."""
    ex = make_exchange(headers={"Date": IMF_DATE}, request_headers={"Authorization": value})
    found = [f for f in audit(ex, digg) if f.rule == "SAK.10.BEARER"]
    assert len(found) == 1
    assert "s3cr3t" not in found[0].message


def test_redacted_authorization_is_not_judged(digg: Profile) -> None:
    """A recording's redacted Authorization cannot show its scheme: no SAK.09/SAK.10."""
    ex = make_exchange(headers={"Date": IMF_DATE}, request_headers={"Authorization": REDACTED})
    assert not {f.rule for f in audit(ex, digg)} & {"SAK.09.NO-BASIC-DIGEST", "SAK.10.BEARER"}


def test_request_body_not_utf8_and_dropped_sample(digg: Profile) -> None:
    """ARQ.01: invalid UTF-8 bytes are found in the sample; a declared charset is judged
    even when the sample is gone (a recording drops a body it cannot redact)."""
    hdrs = {"Date": IMF_DATE, "Location": "/v1/orders/1"}
    bad = make_exchange("POST", 201, hdrs, request_headers={"Content-Type": "application/json"},
                        request_body=Body(size=6, sample=b'"M\xe4r"'))  # fmt: skip
    declared = make_exchange(
        "POST", 201, hdrs, request_headers={"Content-Type": "text/plain; charset=latin-1"},
        request_body=Body(size=6, sample=b""),
    )  # fmt: skip
    cut = make_exchange("POST", 201, hdrs, request_headers={"Content-Type": "application/json"},
                        request_body=Body(size=100, sample="\"å".encode()[:2]))  # fmt: skip
    assert "ARQ.01.UTF8" in {f.rule for f in audit(bad, digg)}
    assert "ARQ.01.UTF8" in {f.rule for f in audit(declared, digg)}
    assert "ARQ.01.UTF8" not in {f.rule for f in audit(cut, digg)}  # a sample cut mid-character


def test_proxy_answers_are_not_judged_by_the_api_rules(digg: Profile) -> None:
    """A 502 the proxy made (no traceparent, unversioned URL) gets none of the DIGG API
    rules, which apply to what the upstream answered; the same head from the upstream does."""
    head = {"Date": IMF_DATE, "Content-Type": "application/problem+json"}
    body = b'{"type": "about:blank", "title": "Bad Gateway", "status": 502}'
    upstream = make_exchange("GET", 502, head, body, target="/orders/1", traced=False)
    proxy = dataclasses.replace(upstream, origin="proxy")
    api_rules = {"SPA.04.TRACEPARENT-RESPONSE", "VER.05.URL-MAJOR"}
    assert api_rules <= {f.rule for f in audit(upstream, digg)}
    assert not api_rules & {f.rule for f in audit(proxy, digg)}
