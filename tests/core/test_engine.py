"""The engine: SPEC §6 rule set and categories, phases, crash isolation, the
issue's done-when cases, and the never-raises property."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditproxy.core import checks
from auditproxy.core.engine import Profile, audit, retry_advice
from auditproxy.core.findings import Severity, is_compliant
from auditproxy.core.model import Body, Exchange, RequestHead, ResponseHead

from .conftest import IMF_DATE, make_exchange

# SPEC §6 rule ids with the severity the built-in profile ships
SPEC_RULES = {
    "ARP.02.METHOD-STATUS": "should", "RETRY.UNUSED-STATUS": "should",
    "STATUS.UNKNOWN": "should", "RFC9110-STATUS-RANGE": "must",
    "ARP.03.LOCATION-201": "should", "ARP.04.LOCATION-202": "should",
    "RFC9110-405-ALLOW": "must", "RFC9110-401-WWW-AUTHENTICATE": "must",
    "RFC9110-407-PROXY-AUTHENTICATE": "must", "RFC9110-426-UPGRADE": "must",
    "RFC9110-3XX-LOCATION": "should", "RFC9110-206-CONTENT-RANGE": "must",
    "RFC9110-413-RETRY-AFTER": "may", "RFC9110-503-RETRY-AFTER": "may",
    "RFC6585-429-RETRY-AFTER": "may", "RFC9110-CONTENT-TYPE-PRESENT": "should",
    "RFC9110-DATE-PRESENT": "must",
    "RFC9110-DATE-FORMAT": "must", "ARP.01.DATE-FORMAT-CONFLICT": "may",
    "RFC9111-EXPIRES-FORMAT": "must", "RFC9110-RETRY-AFTER-SYNTAX": "must",
    "RFC9110-ETAG-SYNTAX": "must", "RFC9110-LOCATION-SYNTAX": "must",
    "ARP.01.CORS-WILDCARD": "should", "FETCH-CORS-WILDCARD-CREDENTIALS": "must",
    "RFC9110-204-NO-CONTENT": "must", "RFC9110-304-NO-CONTENT": "must",
    "RFC9110-HEAD-NO-CONTENT": "must", "RFC8259-JSON-PARSE": "must",
    "FEL.02.MEDIA-TYPE": "must", "FEL.01.MEMBERS": "should", "RFC9457-STATUS-MATCH": "must",
}  # fmt: skip
# The rest of the DIGG profile that traffic can show (issue 13), with the severity
# the profile's SKALL/BÖR wording gives (rule-catalog §3, §5.6-§5.10).
DIGG_RUNTIME_RULES = {
    "UFN.05.URL-LENGTH": "should", "UFN.07.PATH-CHARS": "must", "UFN.08.WORD-SEPARATOR": "must",
    "UFN.09.NO-UNDERSCORE-SPACE": "must", "VER.05.URL-MAJOR": "should",
    "SAK.09.NO-BASIC-DIGEST": "must", "SAK.10.BEARER": "must", "SAK.15.NO-KEY-IN-URL": "must",
    "SAK.25-26.NO-INTERNALS": "should",
    "SPA.04.TRACEPARENT-RESPONSE": "should", "SPA.02.TRACE-CONTINUITY": "should",
    "SPA.07.NO-ID-ONLY": "must", "W3C-TRACEPARENT-SYNTAX": "must",
    "AME.01.JSON-REPRESENTATION": "should", "AME.04.NAMING-STYLE": "should",
    "AME.05.NAMING-CONSISTENT": "must", "AME.07.FIELD-CHARS": "should",
    "DOT.02.RFC3339": "must", "DOT.01.UTC": "must", "DOT.03.TIMEZONE": "should",
    "VER.06.API-INFO": "must", "RFC9745-DEPRECATION-SYNTAX": "must",
    "RFC8594-SUNSET-SYNTAX": "must",
    "ARQ.01.UTF8": "should", "ARQ.04.ACCEPT": "should", "SAK.29.CONTENT-TYPE-415": "should",
}  # fmt: skip
# The field grammar as strict as the RFCs (issue 11): repeated singletons, the
# media-type and Allow grammars, and the one valid Access-Control-Allow-Credentials.
GRAMMAR_RULES = {
    "RFC9110-SINGLETON-REPEATED": "should", "RFC9110-CONTENT-TYPE-SYNTAX": "must",
    "RFC9110-ALLOW-SYNTAX": "must", "FETCH-CORS-CREDENTIALS-VALUE": "should",
}  # fmt: skip
URL_RULES = {"UFN.05.URL-LENGTH", "UFN.07.PATH-CHARS", "UFN.08.WORD-SEPARATOR",
             "UFN.09.NO-UNDERSCORE-SPACE", "VER.05.URL-MAJOR"}  # fmt: skip
MISSING_HEADER = {
    "ARP.03.LOCATION-201": "Location", "ARP.04.LOCATION-202": "Location",
    "RFC9110-405-ALLOW": "Allow", "RFC9110-401-WWW-AUTHENTICATE": "WWW-Authenticate",
    "RFC9110-407-PROXY-AUTHENTICATE": "Proxy-Authenticate", "RFC9110-426-UPGRADE": "Upgrade",
    "RFC9110-3XX-LOCATION": "Location", "RFC9110-206-CONTENT-RANGE": "Content-Range",
    "RFC9110-413-RETRY-AFTER": "Retry-After", "RFC9110-503-RETRY-AFTER": "Retry-After",
    "RFC6585-429-RETRY-AFTER": "Retry-After", "RFC9110-CONTENT-TYPE-PRESENT": "Content-Type",
    "RFC9110-DATE-PRESENT": "Date", "SPA.04.TRACEPARENT-RESPONSE": "traceparent",
}  # fmt: skip
STATUS_RULES = {"ARP.02.METHOD-STATUS", "RETRY.UNUSED-STATUS", "STATUS.UNKNOWN",
                "RFC9110-STATUS-RANGE"}  # fmt: skip
BODY_RULES = {"RFC9110-204-NO-CONTENT", "RFC9110-304-NO-CONTENT", "RFC9110-HEAD-NO-CONTENT",
              "RFC8259-JSON-PARSE"}  # fmt: skip
ERROR_RULES = {"FEL.02.MEDIA-TYPE", "FEL.01.MEMBERS", "RFC9457-STATUS-MATCH"}


def test_builtin_enables_exactly_the_spec_and_digg_runtime_rules(digg: Profile) -> None:
    """The shipped profile enables SPEC §6's rules at SPEC's severities and the rest
    of the DIGG profile that traffic can show, at the profile's severities, and the
    field grammar rules."""
    enabled = {r.id: r.severity.value for r in digg.rules if r.enabled}
    assert enabled == SPEC_RULES | DIGG_RUNTIME_RULES | GRAMMAR_RULES


def test_categories_and_headers(digg: Profile) -> None:
    """Each rule carries the category (and canonical header) its metric family needs."""
    for rule in digg.rules:
        if rule.id in MISSING_HEADER:
            assert (rule.category, rule.header) == ("missing_header", MISSING_HEADER[rule.id])
        elif rule.id in STATUS_RULES:
            assert rule.category == "status"
        elif rule.id in BODY_RULES:
            assert rule.category == "body"
        elif rule.id in ERROR_RULES:
            assert rule.category == "error_format"
        elif rule.id == "ARP.01.DATE-FORMAT-CONFLICT":  # the header is set per finding
            ex = make_exchange(headers={"Expires": "2024-05-01"})
            found = [f for f in audit(ex, digg) if f.rule == rule.id]
            assert [(f.category, f.header) for f in found] == [("header_syntax", "Expires")]
        elif rule.id in URL_RULES:
            assert rule.category == "url"
        elif rule.id in SPEC_RULES:
            assert rule.category == "header_syntax"
            assert rule.header


def test_post_201_without_location(digg: Profile) -> None:
    """POST answered 201 without Location: ARP.03.LOCATION-201, missing_header Location, should."""
    findings = audit(make_exchange("POST", 201, {"Date": IMF_DATE}), digg)
    assert [(f.rule, f.category, f.header, f.severity) for f in findings] == [
        ("ARP.03.LOCATION-201", "missing_header", "Location", Severity.SHOULD)
    ]
    assert not is_compliant(findings)


def test_get_201_is_a_status_finding(digg: Profile) -> None:
    """GET answered 201 is an ARP.02.METHOD-STATUS status finding of severity should."""
    ex = make_exchange("GET", 201, {"Date": IMF_DATE, "Location": "/x/1"})
    findings = audit(ex, digg)
    assert [(f.rule, f.category, f.severity) for f in findings] == [
        ("ARP.02.METHOD-STATUS", "status", Severity.SHOULD)
    ]


def test_402_is_an_unused_status(digg: Profile) -> None:
    """A 402 counts under RETRY.UNUSED-STATUS (should)."""
    ex = make_exchange("POST", 402, {"Date": IMF_DATE})
    findings = audit(ex, digg)
    assert [(f.rule, f.category, f.severity) for f in findings] == [
        ("RETRY.UNUSED-STATUS", "status", Severity.SHOULD)
    ]


def test_compliant_get_has_no_findings(digg: Profile) -> None:
    """GET 200 application/json with Date and a valid JSON body gives no findings at all."""
    body = json.dumps({"orders": [{"id": 1}]}).encode()
    ex = make_exchange("GET", 200, {"Date": IMF_DATE, "Content-Type": "application/json"}, body)
    assert audit(ex, digg) == ()
    assert audit(ex, digg, phase="head") == ()
    assert audit(ex, digg, phase="body") == ()


def test_phases_split_head_and_body_checks(digg: Profile) -> None:
    """'head' runs header/status checks only, 'body' only body checks, 'all' both."""
    ex = make_exchange("DELETE", 204, {}, b"{}")
    head = {f.rule for f in audit(ex, digg, phase="head")}
    body = {f.rule for f in audit(ex, digg, phase="body")}
    assert head == {"RFC9110-DATE-PRESENT"}
    assert body == {"RFC9110-204-NO-CONTENT", "RFC9110-CONTENT-TYPE-PRESENT"}
    assert {f.rule for f in audit(ex, digg, phase="all")} == head | body


def test_truncated_sample_is_not_called_invalid_json(digg: Profile) -> None:
    """A JSON body cut off by the sample cap is not reported as unparseable."""
    sample = b'{"items": [1, 2, 3'
    hdrs = {"Date": IMF_DATE, "Content-Type": "application/json"}
    cut = make_exchange("GET", 200, hdrs, sample, body_size=1_000_000)
    assert audit(cut, digg) == ()
    whole = make_exchange("GET", 200, hdrs, sample)
    assert [f.rule for f in audit(whole, digg)] == ["RFC8259-JSON-PARSE"]


def test_true_size_drives_no_content_rules(digg: Profile) -> None:
    """Body rules use the true byte count, even when no sample was kept."""
    ex = make_exchange("HEAD", 200, {"Date": IMF_DATE}, b"", body_size=10)
    assert "RFC9110-HEAD-NO-CONTENT" in {f.rule for f in audit(ex, digg)}


def test_proxy_origin_is_audited_normally(digg: Profile) -> None:
    """The proxy's own 502 is audited like any other response."""
    ex = make_exchange("GET", 502, {"Content-Type": "text/plain"}, b"bad gateway",
                       origin="proxy")  # fmt: skip
    assert [f.rule for f in audit(ex, digg)] == ["FEL.02.MEDIA-TYPE"]


def test_crashing_check_becomes_one_error_finding(
    digg: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check that raises gives one ERROR finding with its rule id; the others still run."""

    def boom(ctx: checks.Ctx, **params: object) -> checks.Hit:
        raise RuntimeError("kaboom")

    spec = checks.CHECKS["unused_status"]
    monkeypatch.setitem(checks.CHECKS, "unused_status", dataclasses.replace(spec, fn=boom))
    profile = dataclasses.replace(digg)  # rebuilds the dispatch with the patched check
    findings = audit(make_exchange("POST", 201), profile)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    assert [(f.rule, f.message) for f in errors] == [
        ("RETRY.UNUSED-STATUS", "check unused_status crashed: RuntimeError: kaboom")
    ]
    assert {"ARP.03.LOCATION-201", "RFC9110-DATE-PRESENT"} <= {f.rule for f in findings}
    assert is_compliant(tuple(errors))  # an engine error never blames the API


def test_overridden_severity_and_disabled_rule(digg: Profile) -> None:
    """Overrides change a rule's severity or switch it off."""
    from auditproxy.profiles import load_profile

    profile = load_profile("digg", {"ARP.03.LOCATION-201": {"severity": "may"},
                                    "RFC9110-DATE-PRESENT": {"enabled": False}})  # fmt: skip
    findings = audit(make_exchange("POST", 201), profile)
    assert [(f.rule, f.severity) for f in findings] == [("ARP.03.LOCATION-201", Severity.MAY)]
    assert is_compliant(findings)


def test_placeholder_style_profile_audits_nothing() -> None:
    """A bare Profile(name, version) is valid and has no rules."""
    assert audit(make_exchange("GET", 201), Profile(name="x", version="0")) == ()


_FAST = settings(max_examples=int(os.environ.get("AUDITPROXY_HYPOTHESIS_EXAMPLES", "200")),
                 deadline=None, suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
_names = st.one_of(
    st.sampled_from(["Date", "Expires", "ETag", "Location", "Retry-After", "Content-Type",
                     "Content-Encoding", "Access-Control-Allow-Origin", "WWW-Authenticate",
                     "Access-Control-Allow-Credentials", "Content-Range", "Allow"]),
    st.text(max_size=20),
)  # fmt: skip
_values = st.one_of(
    st.sampled_from(["application/json", "application/problem+json", "*", "true", "",
                     "multipart/byteranges; boundary=x", IMF_DATE, "2024-01-01T00:00:00Z",
                     'W/"x"', "gzip"]),
    st.text(max_size=60),
)  # fmt: skip
_bodies = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=10,
    ).map(lambda v: json.dumps(v).encode()),
)


@_FAST
@given(
    status=st.integers(min_value=0, max_value=999),
    method=st.one_of(st.sampled_from(["GET", "HEAD", "POST", "PATCH", "OPTIONS"]), st.text()),
    headers=st.lists(st.tuples(_names, _values), max_size=8),
    req_headers=st.lists(st.tuples(_names, _values), max_size=4),
    body=_bodies,
    extra=st.integers(min_value=0, max_value=1000),
    public=st.booleans(),
)
def test_engine_never_raises(
    digg_all: Profile,
    status: int,
    method: str,
    headers: list[tuple[str, str]],
    req_headers: list[tuple[str, str]],
    body: bytes,
    extra: int,
    public: bool,
) -> None:
    """audit and retry_advice never raise and never produce an engine error on any input."""
    ex = Exchange(
        request=RequestHead(method=method, target="/", headers=tuple(req_headers)),
        response=ResponseHead(status=status, headers=tuple(headers)),
        response_body=Body(size=len(body) + extra, sample=body),
        public=public,
    )
    for phase in ("head", "body", "all"):
        findings = audit(ex, digg_all, phase=phase)
        assert not [f for f in findings if f.severity is Severity.ERROR], findings
        assert all(isinstance(f.message, str) and f.message for f in findings)
    assert retry_advice(ex, digg_all).advice in ("never", "must", "may", "conditional")


def test_repeated_location_never_shows_its_query(digg: Profile) -> None:
    """A repeated Location is named with its lines, but a query string (which may
    carry a credential) is cut from the message."""
    lines = (("Location", "/v1/orders/1"), ("Location", "/v1/orders/1?token=s3cr3t"))
    ex = make_exchange("POST", 201, {})
    ex = dataclasses.replace(
        ex, response=dataclasses.replace(ex.response, headers=(*ex.response.headers, *lines))
    )
    found = [f for f in audit(ex, digg) if f.rule == "RFC9110-SINGLETON-REPEATED"]
    assert len(found) == 1
    assert "/v1/orders/1 | /v1/orders/1" in found[0].message
    assert "s3cr3t" not in found[0].message
