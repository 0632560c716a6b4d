"""The field-syntax parsers, one table per grammar."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from auditproxy.core import httpsyntax as hs

DATES = [
    ("Sun, 06 Nov 1994 08:49:37 GMT", True, True),
    ("Sunday, 06-Nov-94 08:49:37 GMT", False, True),
    ("Sun Nov  6 08:49:37 1994", False, True),
    ("Sun, 06 Nov 1994 08:49:37 UTC", False, False),
    ("sun, 06 nov 1994 08:49:37 GMT", False, False),
    ("Sun, 31 Feb 1994 08:49:37 GMT", False, False),
    ("Sat, 31 Dec 2016 23:59:60 GMT", True, True),
    ("Sat, 31 Dec 2016 23:59:61 GMT", False, False),
    ("2024-05-01T10:00:00Z", False, False),
    ("", False, False),
]


@pytest.mark.parametrize(("value", "imf", "http"), DATES, ids=[d[0] or "empty" for d in DATES])
def test_dates(value: str, imf: bool, http: bool) -> None:
    """IMF-fixdate is strict; HTTP-date also accepts the two obsolete forms."""
    assert (hs.parse_imf_fixdate(value) is not None) is imf
    assert (hs.parse_http_date(value) is not None) is http


def test_dates_parse_to_the_same_instant() -> None:
    """All three HTTP-date forms give the same instant."""
    want = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)
    assert {hs.parse_http_date(v) for v, _, ok in DATES if ok and "2016" not in v} == {want}


@pytest.mark.parametrize(
    ("value", "ok"),
    [("2024-05-01", True), ("2024-05-01T10:00:00Z", True),
     ("2024-05-01 10:00:00.5+02:00", True), ("2024-05-01T10:00:00", False),
     ("2024-13-01", False), ("Sun, 06 Nov 1994 08:49:37 GMT", False)],
)  # fmt: skip
def test_rfc3339(value: str, ok: bool) -> None:
    """RFC 3339 full-date or date-time with offset."""
    assert hs.is_rfc3339(value) is ok


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("120", 120), ("0", 0), (" 5 ", 5), ("-5", None), ("1.5", None), ("2m", None),
     ("Fri, 31 Dec 1999 23:59:59 GMT", datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC))],
)  # fmt: skip
def test_retry_after(value: str, parsed: object) -> None:
    """Retry-After is delay-seconds or an HTTP-date."""
    assert hs.parse_retry_after(value) == parsed


@pytest.mark.parametrize(
    ("value", "ok"),
    [('"xyzzy"', True), ('W/"xyzzy"', True), ('""', True), ("xyzzy", False), ('w/"x"', False),
     ("*", False), ('"a", "b"', False), ('"a"b"', False)],
)  # fmt: skip
def test_entity_tag(value: str, ok: bool) -> None:
    """An entity-tag is one quoted opaque string with an optional W/ prefix."""
    assert hs.is_entity_tag(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [("/orders/1", True), ("https://example.org/a?b=c#d", True), ("../x", True), ("", True),
     ("http://[::1]:8080/x", True), ("urn:isbn:0451450523", True), ("//host/p", True),
     ("/a b", False), ("/a%zz", False), ("1ab:c/d", False), ("/a#b#c", False),
     ("/a[1]", False), ("http://x/\u00e5", False)],
)  # fmt: skip
def test_uri_reference(value: str, ok: bool) -> None:
    """Location values are RFC 3986 URI-references."""
    assert hs.is_uri_reference(value) is ok


def test_media_type_helpers() -> None:
    """Media type essence and parameters are read case-insensitively."""
    ct = 'Multipart/ByteRanges; Boundary="XYZ"'
    assert hs.media_type(ct) == "multipart/byteranges"
    assert hs.media_type_param(ct, "boundary") == "XYZ"
    assert hs.media_type(None) == ""
    assert hs.is_json_media_type("application/vnd.api+json")
    assert not hs.is_json_media_type("text/json-ish")


@pytest.mark.parametrize(
    ("value", "schemes", "errors"),
    [('Basic realm="WallyWorld"', ("Basic",), 0), ("Bearer", ("Bearer",), 0),
     ('Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
      ("Newauth", "Basic"), 0),
     ("Negotiate abc==, Bearer", ("Negotiate", "Bearer"), 0),
     ('Bearer error="a, Basic b"', ("Bearer",), 0),
     ('realm="x"', (), 1), (", ,", (), 0), ("", (), 0), ('"Bearer"', (), 1),
     ("Basic\trealm=x", (), 1), ("Bearer abc, realm=x", ("Bearer",), 1),
     ("Basic realm=My Realm, Digest a=b", ("Basic", "Digest"), 1),
     ('",Basic', (), 1), ("Basic \t, Bearer", ("Basic", "Bearer"), 0)],
)  # fmt: skip
def test_challenges(value: str, schemes: tuple[str, ...], errors: int) -> None:
    """#challenge per RFC 9110 §11.6.1: an auth-scheme starts each challenge; commas
    inside quoted strings do not split; a parameter alone is no challenge."""
    assert hs.parse_challenges(value) == (schemes, errors)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("application/json", ("application/json", ())),
     ("Application/Problem+JSON; Charset=UTF-8",
      ("application/problem+json", (("charset", "UTF-8"),))),
     ('text/plain; x="a;b"; charset="utf-8"', ("text/plain", (("x", "a;b"), ("charset", "utf-8")))),
     ('multipart/byteranges; boundary="XY\\"Z"', ("multipart/byteranges", (("boundary", 'XY"Z'),))),
     ("application/json;", ("application/json", ())),
     ("application/json; charset", None), ("application/json, text/html", None),
     ("application/json; charset = utf-8", None), ('text/html; a="b', None),
     ("application/", None), ("", None)],
)  # fmt: skip
def test_media_type_grammar(value: str, parsed: object) -> None:
    """media-type = type "/" subtype *( OWS ";" OWS [ token "=" ( token / quoted-string ) ] )."""
    assert hs.parse_media_type(value) == parsed


def test_media_type_params_honour_quoted_strings() -> None:
    """A ';' or a parameter name inside a quoted string is part of the value."""
    ct = 'text/plain; x="a; charset=latin1"; charset=utf-8'
    assert hs.media_type_param(ct, "charset") == "utf-8"
    assert hs.media_type_param(ct, "x") == "a; charset=latin1"
    assert hs.media_type("application/problem+json garbage") == ""


@pytest.mark.parametrize(
    ("value", "tokens"),
    [("GET, HEAD", ("GET", "HEAD")), ("", ()), (" ", ()), ("GET,\tHEAD ", ("GET", "HEAD")),
     (",, ,", None), ("GET,,PUT", None), ("GET,", None),
     ("GET; POST", None), ("GET POST", None), ('"GET"', None)],
)  # fmt: skip
def test_token_list(value: str, tokens: object) -> None:
    """#token as a sender generates it (Allow = #method): tokens separated by commas,
    an empty value allowed, an empty element not."""
    assert hs.parse_token_list(value) == tokens


@pytest.mark.parametrize(
    ("value", "ok"),
    [("http://[v1.x]/", True), ("mailto:a@b", True), ("./a:b", True), ("?q=1", True),
     ("#frag", True), ("http://user:pw@host:8080/p?q#f", True), ("http://1.2.3.4/", True),
     ("http://[::ffff:1.2.3.4]/", True), ("http://[::1", False), ("http://[1:2]/", False),
     ("http://[::1]x/", False), ("http://h:80x/", False), ("\\path", False), ("a b:c", False)],
)  # fmt: skip
def test_uri_reference_grammar(value: str, ok: bool) -> None:
    """RFC 3986 Appendix A: the authority, IP literals and ports are judged too."""
    assert hs.is_uri_reference(value) is ok


@pytest.mark.parametrize(
    ("value", "items"),
    [("a, b", ["a", "b"]), (' a;x="1,2" , ,b', ['a;x="1,2"', "b"]), (",,", []),
     ('a;x="\\",", b', ['a;x="\\","', "b"]), ('a;x="open, b', ['a;x="open, b'])],
)  # fmt: skip
def test_split_list(value: str, items: list[str]) -> None:
    """#rule lists split at commas outside quoted strings (quoted-pair honoured)."""
    assert hs.split_list(value) == items
