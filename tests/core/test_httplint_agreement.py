"""Agreement with an independent HTTP linter: httplint, the REDbot engine.

Every response of a corpus (each rule's pass/fail examples from the profile, plus
hand-picked edge cases of the field grammars) goes through our engine and through
httplint. For each rule that both judge, httplint's verdict is read from its notes
(or, where it has no note, from its own parse of the field) and compared with ours.
The differences that remain are pinned in ``DIFFERENCES``, each with the reason the
profile README gives under "Where we differ from httplint"; a new difference, or a
pinned one that went away, fails the test.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from httplint import HttpRequestLinter, HttpResponseLinter
from httplint.field.challenge_field import parse_challenges as httplint_challenges
from httplint.field.common import RE_FLAGS
from httplint.field.http_date import parse_http_date as httplint_date
from httplint.syntax import rfc3986, rfc9110
from hypothesis import given, settings
from hypothesis import strategies as st

from auditproxy.core import httpsyntax as hs
from auditproxy.core.engine import Profile, audit
from auditproxy.core.guidelines import example_exchange
from auditproxy.core.httpsyntax import reason_phrase
from auditproxy.core.model import Exchange
from auditproxy.profiles import load_profile

README = Path(__file__).resolve().parents[2] / "src/auditproxy/profiles/digg/README.md"
SINGLETONS = ("Date", "Retry-After", "Content-Type", "ETag", "Location", "Expires",
              "Last-Modified", "Content-Length")  # fmt: skip
SYNTAX = ("BAD_SYNTAX", "BAD_SYNTAX_DETAILED")
DATE_NOTES = ("BAD_DATE_SYNTAX", "DATE_OBSOLETE")
GMT = "Sun, 06 Nov 1994 08:49:37 GMT"

Verdict = Callable[[HttpResponseLinter], bool]


def _noted(field: str, *notes: str) -> Verdict:
    """httplint added one of ``notes`` about ``field``."""
    return lambda r: any(
        type(n).__name__ in notes and n.vars.get("field_name") == field for n in r.notes
    )


def _status_noted(status: int, note: str) -> Verdict:
    return lambda r: r.status_code == status and any(type(n).__name__ == note for n in r.notes)


def _no_challenge(status: int, field: str) -> Verdict:
    """httplint has no note for a missing challenge: its parse of the field has none."""
    return lambda r: r.status_code == status and not r.headers.parsed.get(field)


def _repeated(r: HttpResponseLinter) -> bool:
    return any(
        type(n).__name__ == "SINGLE_HEADER_REPEAT" and n.vars.get("field_name") in SINGLETONS
        for n in r.notes
    )


def _wildcard_credentials(r: HttpResponseLinter) -> bool:
    parsed = r.headers.parsed
    return bool(
        parsed.get("access-control-allow-origin") == "*"
        and parsed.get("access-control-allow-credentials") == "true"
    )


# Our rule -> httplint's verdict on the same response.
THEIRS: dict[str, Verdict] = {
    "RFC9110-DATE-FORMAT": _noted("Date", *DATE_NOTES),
    "RFC9111-EXPIRES-FORMAT": _noted("Expires", *DATE_NOTES),
    "RFC9110-HTTP-DATE-FIELDS": _noted("Last-Modified", *DATE_NOTES),
    "RFC9110-RETRY-AFTER-SYNTAX": _noted("Retry-After", *SYNTAX),
    "RFC9110-ETAG-SYNTAX": _noted("ETag", *SYNTAX, "ENTITY_TAG_WEAK_CASE"),
    "RFC9110-LOCATION-SYNTAX": _noted("Location", *SYNTAX, "LOCATION_BAD_URI"),
    "RFC9110-CONTENT-TYPE-SYNTAX": _noted("Content-Type", *SYNTAX),
    "RFC9110-ALLOW-SYNTAX": _noted("Allow", *SYNTAX),
    "RFC9110-SINGLETON-REPEATED": _repeated,
    "RFC9110-401-WWW-AUTHENTICATE": _no_challenge(401, "www-authenticate"),
    "RFC9110-407-PROXY-AUTHENTICATE": _no_challenge(407, "proxy-authenticate"),
    "RFC9110-204-NO-CONTENT": _status_noted(204, "CONTENT_NOT_ALLOWED"),
    "RFC9110-304-NO-CONTENT": _status_noted(304, "CONTENT_NOT_ALLOWED"),
    "RFC9110-HEAD-NO-CONTENT": lambda r: (
        r.is_head_response and any(type(n).__name__ == "CONTENT_NOT_ALLOWED" for n in r.notes)
    ),
    "ARP.03.LOCATION-201": _status_noted(201, "CREATED_WITHOUT_LOCATION"),
    "RFC9110-3XX-LOCATION": lambda r: any(
        type(n).__name__ == "REDIRECT_WITHOUT_LOCATION" for n in r.notes
    ),
    "RFC9110-206-CONTENT-RANGE": _status_noted(206, "PARTIAL_WITHOUT_RANGE"),
    "FETCH-CORS-WILDCARD-CREDENTIALS": _wildcard_credentials,
    "FETCH-CORS-CREDENTIALS-VALUE": _noted("Access-Control-Allow-Credentials", *SYNTAX),
}


def _h(*pairs: tuple[str, str]) -> list[list[str]]:
    return [list(p) for p in pairs]


# Hand-picked edge cases of every overlapping grammar, in the profile's example form.
EDGE: dict[str, dict[str, Any]] = {
    "date/rfc850": {"headers": {"Date": "Sunday, 06-Nov-94 08:49:37 GMT"}},
    "date/asctime": {"headers": {"Date": "Sun Nov  6 08:49:37 1994"}},
    "date/lower-case": {"headers": {"Date": "sun, 06 Nov 1994 08:49:37 GMT"}},
    "date/31-feb": {"headers": {"Date": "Thu, 31 Feb 1994 08:49:37 GMT"}},
    "date/leap-second": {"headers": {"Date": "Sat, 31 Dec 2016 23:59:60 GMT"}},
    "date/one-digit-day": {"headers": {"Date": "Sun, 6 Nov 1994 08:49:37 GMT"}},
    "date/second-line-bad": {"headers": _h(("Date", GMT), ("Date", "yesterday"))},
    "expires/minus-one": {"headers": {"Expires": "-1"}},
    "expires/rfc850": {"headers": {"Expires": "Sunday, 06-Nov-94 08:49:37 GMT"}},
    "last-modified/bad": {"headers": {"Last-Modified": "1994-11-06"}},
    "last-modified/second-line-bad": {
        "headers": _h(("Last-Modified", GMT), ("Last-Modified", "0"))
    },
    "retry-after/padded": {"status": 503, "headers": {"Retry-After": " 120 "}},
    "retry-after/fraction": {"status": 503, "headers": {"Retry-After": "1.5"}},
    "retry-after/rfc850": {
        "status": 503,
        "headers": {"Retry-After": "Friday, 31-Dec-99 23:59:59 GMT"},
    },
    "retry-after/empty": {"status": 503, "headers": {"Retry-After": ""}},
    "etag/empty-quoted": {"headers": {"ETag": '""'}},
    "etag/inner-quote": {"headers": {"ETag": '"a"b"'}},
    "etag/weak-unquoted": {"headers": {"ETag": "W/x"}},
    "etag/twice-valid": {"headers": _h(("ETag", '"a"'), ("ETag", '"b"'))},
    "location/relative": {"status": 303, "headers": {"Location": "../orders?x=1"}},
    "location/ipv6": {"status": 302, "headers": {"Location": "http://[::1]:8080/x"}},
    "location/ipv6-open": {"status": 302, "headers": {"Location": "http://[::1/x"}},
    "location/non-ascii": {"status": 302, "headers": {"Location": "/caf\u00e9"}},
    "location/backslash": {"status": 302, "headers": {"Location": "\\\\evil"}},
    "location/empty": {"status": 201, "headers": {"Location": ""}},
    "location/urn": {"status": 201, "headers": {"Location": "urn:isbn:0451450523"}},
    "content-type/quoted-semicolon": {"headers": {"Content-Type": 'text/plain; x="a;b"'}},
    "content-type/trailing-semicolon": {"headers": {"Content-Type": "application/json;"}},
    "content-type/no-subtype": {"headers": {"Content-Type": "application"}},
    "content-type/list": {"headers": {"Content-Type": "text/html, application/json"}},
    "content-type/space-before-eq": {"headers": {"Content-Type": "text/html; charset =utf-8"}},
    "content-type/twice": {"headers": _h(("Content-Type", "text/html"), ("Content-Type", "a b"))},
    "allow/empty": {"status": 405, "headers": {"Allow": ""}},
    "allow/commas": {"status": 405, "headers": {"Allow": ", ,"}},
    "allow/semicolon": {"status": 405, "headers": {"Allow": "GET; POST"}},
    "allow/quoted": {"status": 405, "headers": {"Allow": '"GET"'}},
    "401/realm-only": {"status": 401, "headers": {"WWW-Authenticate": 'realm="api"'}},
    "401/commas": {"status": 401, "headers": {"WWW-Authenticate": ",,"}},
    "401/bare-scheme": {"status": 401, "headers": {"WWW-Authenticate": "Bearer"}},
    "401/token68": {"status": 401, "headers": {"WWW-Authenticate": "Negotiate abc=="}},
    "401/quoted-comma": {"status": 401, "headers": {"WWW-Authenticate": 'Bearer error="a, b"'}},
    "401/broken-param": {"status": 401, "headers": {"WWW-Authenticate": "Basic realm=My Realm"}},
    "401/quoted-scheme": {"status": 401, "headers": {"WWW-Authenticate": '"Bearer"'}},
    "401/unterminated": {"status": 401, "headers": {"WWW-Authenticate": 'Bearer realm="a'}},
    "401/second-line": {
        "status": 401,
        "headers": _h(("WWW-Authenticate", ","), ("WWW-Authenticate", "Bearer")),
    },
    "407/realm-only": {"status": 407, "headers": {"Proxy-Authenticate": 'realm="p"'}},
    "204/body": {"method": "DELETE", "status": 204, "body": "x"},
    "304/body": {"status": 304, "headers": {"ETag": '"a"'}, "body": "x"},
    "head/body": {"method": "HEAD", "body": "x"},
    "content-length/twice-same": {
        "headers": _h(("Content-Length", "1"), ("Content-Length", "1")),
        "body": "x",
    },
    "content-length/twice-differ": {
        "headers": _h(("Content-Length", "1"), ("Content-Length", "2")),
        "body": "x",
    },
    "cors/true-cap": {
        "headers": {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "True"}
    },
    "cors/true-padded": {
        "headers": {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Credentials": " true ",
        }
    },
    "cors/false": {"headers": {"Access-Control-Allow-Credentials": "false"}},
    "cors/true-twice": {
        "headers": _h(
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Credentials", "true"),
            ("Access-Control-Allow-Credentials", "true"),
        )
    },
    "206/multipart": {
        "status": 206,
        "headers": {"Content-Type": "multipart/byteranges; boundary=XYZ"},
    },
}  # fmt: skip

# (case, rule) -> the reason, as README's "Where we differ from httplint" names it.
# Lines after the first that break the field's grammar: we judge them, httplint does not.
EVERY_LINE = [
    ("RFC9110-DATE-FORMAT/fail3", "RFC9110-DATE-FORMAT"),
    ("date/second-line-bad", "RFC9110-DATE-FORMAT"),
    ("ARP.01.DATE-FORMAT-CONFLICT/fail2", "RFC9111-EXPIRES-FORMAT"),
    ("RFC9111-EXPIRES-FORMAT/fail2", "RFC9111-EXPIRES-FORMAT"),
    ("last-modified/second-line-bad", "RFC9110-HTTP-DATE-FIELDS"),
    ("RFC9110-RETRY-AFTER-SYNTAX/fail2", "RFC9110-RETRY-AFTER-SYNTAX"),
    ("RFC9110-ETAG-SYNTAX/fail4", "RFC9110-ETAG-SYNTAX"),
    ("RFC9110-LOCATION-SYNTAX/fail3", "RFC9110-LOCATION-SYNTAX"),
    ("RFC9110-CONTENT-TYPE-SYNTAX/fail4", "RFC9110-CONTENT-TYPE-SYNTAX"),
    ("content-type/twice", "RFC9110-CONTENT-TYPE-SYNTAX"),
]
DIFFERENCES: dict[tuple[str, str], str] = {
    **dict.fromkeys(EVERY_LINE, "every line"),
    ("RFC9110-ALLOW-SYNTAX/fail0", "RFC9110-ALLOW-SYNTAX"): "empty list elements",
    ("allow/commas", "RFC9110-ALLOW-SYNTAX"): "empty list elements",
    ("RFC9110-206-CONTENT-RANGE/pass1", "RFC9110-206-CONTENT-RANGE"): "multipart 206",
    ("206/multipart", "RFC9110-206-CONTENT-RANGE"): "multipart 206",
    ("cors/true-twice", "FETCH-CORS-CREDENTIALS-VALUE"): "combined CORS value",
    ("cors/true-twice", "FETCH-CORS-WILDCARD-CREDENTIALS"): "combined CORS value",
}


def corpus() -> Iterator[tuple[str, dict[str, Any]]]:
    for rule in load_profile("digg").rules:
        for kind in ("pass", "fail"):
            for i, spec in enumerate(rule.examples.get(kind, ())):
                yield f"{rule.id}/{kind}{i}", dict(spec)
    yield from EDGE.items()


def _bytes(headers: tuple[tuple[str, str], ...]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("utf-8")) for k, v in headers]


def lint(ex: Exchange) -> HttpResponseLinter:
    """httplint's reading of the exchange: the request, then the response and its body."""
    request = HttpRequestLinter()
    target = ("http://api.example" + ex.request.target).encode()
    request.process_request_topline(ex.request.method.encode(), target, b"HTTP/1.1")
    request.process_headers(_bytes(ex.request.headers))
    request.finish_content(True)
    response = HttpResponseLinter(_related=request)
    response.is_head_response = ex.request.method == "HEAD"
    status = ex.response.status
    response.process_response_topline(
        b"HTTP/1.1", f"{status:03d}".encode(), reason_phrase(status).encode() or b"X"
    )
    response.process_headers(_bytes(ex.response.headers))
    response.feed_content(ex.response_body.sample)
    response.finish_content(True)
    return response


_VERDICTS: dict[tuple[str, str], tuple[bool, bool]] = {}


def verdicts(profile: Profile) -> dict[tuple[str, str], tuple[bool, bool]]:
    """(case, rule) -> (ours, httplint's) for every corpus response and compared rule."""
    if not _VERDICTS:
        for name, spec in corpus():
            ex = example_exchange(spec)
            if not 100 <= ex.response.status <= 999:
                continue  # httplint reads only three-digit status codes
            ours = {f.rule for f in audit(ex, profile)}
            linted = lint(ex)
            for rule, theirs in THEIRS.items():
                _VERDICTS[(name, rule)] = (rule in ours, theirs(linted))
    return _VERDICTS


def test_every_compared_rule_is_in_the_profile(digg: Profile) -> None:
    """The comparison names real rules."""
    assert set(THEIRS) <= {r.id for r in digg.rules}


def test_verdicts_agree_with_httplint_but_for_the_justified_differences(
    digg_all: Profile,
) -> None:
    """Our verdict equals httplint's on every overlapping rule and corpus response,
    except the pinned differences; each pin names a reason the README explains."""
    found = {key: v for key, v in verdicts(digg_all).items() if v[0] != v[1]}
    report = "\n".join(f"{case} {rule}: ours={o} httplint={t}" for (case, rule), (o, t) in
                       sorted(found.items()))  # fmt: skip
    assert set(found) == set(DIFFERENCES), report


@pytest.mark.parametrize("rule", sorted(THEIRS))
def test_the_corpus_exercises_each_compared_rule(digg_all: Profile, rule: str) -> None:
    """Each compared rule has responses both tools flag and responses both pass, so
    agreement is not the two tools being silent on the rule."""
    seen = {v for (_, r), v in verdicts(digg_all).items() if r == rule}
    assert {(True, True), (False, False)} <= seen, seen


@pytest.mark.parametrize("reason", sorted(set(DIFFERENCES.values())))
def test_each_difference_is_justified_in_the_readme(reason: str) -> None:
    """Every reason a pin names is explained in the profile README."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Where we differ from httplint", 1)
    assert len(section) == 2, "README lacks the section"
    assert f"**{reason}**" in section[1], reason


# --- the grammars themselves, value by value, against httplint's parsers ------------------
# Short strings over the characters that matter to each grammar find the corner cases
# (quotes, backslashes, commas, brackets, OWS) that hand-picked examples miss.

_MANY = settings(
    max_examples=int(os.environ.get("AUDITPROXY_HYPOTHESIS_EXAMPLES", "300")), deadline=None
)


def _abnf(source: object) -> re.Pattern[str]:
    """httplint's ABNF regex as its field syntax check applies it to one value."""
    return re.compile(rf"^\s*(?:{source})\s*$", RE_FLAGS)


_SYNTAX_ORACLES: dict[str, tuple[str, Callable[[str], bool], re.Pattern[str]]] = {
    "media-type": ('a/;=" \t,\\*b', lambda v: hs.parse_media_type(v) is not None,
                   _abnf(rfc9110.Content_Type)),
    "URI-reference": ("a:/?#[]@%1f.! v", hs.is_uri_reference, _abnf(rfc3986.URI_reference)),
    "#method": ('A, \t;"', lambda v: hs.parse_token_list(v) is not None, _abnf(rfc9110.Allow)),
    "entity-tag": ('Ww/"a \t,*\\\x7f\x80', hs.is_entity_tag, _abnf(rfc9110.ETag)),
    "delay-seconds": ("0123 -.+\t", lambda v: hs.parse_retry_after(v) is not None,
                      _abnf(rfc9110.Retry_After)),
}  # fmt: skip


@pytest.mark.parametrize("grammar", sorted(_SYNTAX_ORACLES))
def test_grammar_matches_httplints_abnf(grammar: str) -> None:
    """Our parser accepts exactly what httplint's transcription of the same ABNF does."""
    alphabet, ours, theirs = _SYNTAX_ORACLES[grammar]

    @_MANY
    @given(st.text(alphabet=alphabet, max_size=14))
    def check(value: str) -> None:
        assert ours(value) is (theirs.match(value) is not None), repr(value)

    check()


@_MANY
@given(st.text(alphabet='Bb a=",\\ \t/', max_size=16))
def test_challenges_match_httplints_parser(value: str) -> None:
    """The same auth-schemes, in order, and a syntax error exactly when httplint finds
    one (including its recovery after an error)."""
    schemes, errors = hs.parse_challenges(value)
    theirs, _, their_errors = httplint_challenges(value.strip(" \t"))
    assert [s.lower() for s in schemes] == [c[0] for c in theirs]
    assert (errors > 0) is bool(their_errors)


def _two(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.integers(lo, hi).map(lambda i: f"{i:02d}")


_DAYS = st.sampled_from(["Sun", "Mon", "Thu", "sun", "Sunday", "Friday"])
_MONTHS = st.sampled_from(["Jan", "Feb", "Nov", "nov", "NOV", "Foo"])
_TIMES = st.tuples(_two(0, 29), _two(0, 69), _two(0, 69)).map(":".join)
# Date-shaped values in each HTTP-date form, with fields out of range and wrong case.
_DATES = st.one_of(
    st.builds("{}, {} {} {} {} {}".format, _DAYS, st.one_of(_two(0, 39), st.just("6")),
              _MONTHS, st.integers(0, 9999).map(lambda y: f"{y:04d}"), _TIMES,
              st.sampled_from(["GMT", "UTC", "gmt"])),
    st.builds("{}, {}-{}-{} {} GMT".format, _DAYS, _two(0, 39), _MONTHS, _two(0, 99), _TIMES),
    st.builds("{} {} {} {} {}".format, _DAYS, _MONTHS, st.one_of(_two(0, 39), st.just(" 6")),
              _TIMES, st.integers(0, 9999).map(lambda y: f"{y:04d}")),
)  # fmt: skip


@_MANY
@given(_DATES)
def test_dates_match_httplints_parser(value: str) -> None:
    """An HTTP-date exactly when httplint parses one, and an IMF-fixdate exactly when
    it also finds the form not obsolete (so RFC9110-DATE-FORMAT matches its notes)."""
    notes: list[str] = []
    try:
        httplint_date(value, lambda note, **_: notes.append(note.__name__), now=0)
        valid = True
    except ValueError:
        valid = False
    assert (hs.parse_http_date(value) is not None) is valid
    assert (hs.parse_imf_fixdate(value) is not None) is (valid and "DATE_OBSOLETE" not in notes)
