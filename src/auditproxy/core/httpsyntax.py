"""Parsers for the HTTP field syntaxes the rules check. Standard library only.

Each function takes the raw field value and returns a parsed value or ``None``
(never raises). Grammars: RFC 9110 §5.6.7 (HTTP-date), §8.8.3 (entity-tag),
§10.2.3 (Retry-After), §5.6.2-§5.6.4 (token, quoted-string, lists), §8.3.1
(media-type), §10.2.1 (Allow), §11.6.1 (challenges); RFC 3986 Appendix A
(URI-reference); RFC 3339 (timestamps).

No maintained standard-library parser exists for these: ``email.utils`` and
``urllib.parse`` accept what the grammars reject (``urlsplit`` takes spaces and
bare ``%``), so the ABNF is transcribed here into regular expressions, compiled
once. The core stays standard-library only; the test suite checks the verdicts
against an independent linter (httplint).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = "(" + "|".join(_MONTHS) + ")"
_MONTH_NUM = {name: i + 1 for i, name in enumerate(_MONTHS)}
_TIME = r"(\d{2}):(\d{2}):(\d{2})"

# IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT (case-sensitive, always GMT)
_IMF_FIXDATE = re.compile(rf"{_DAY}, (\d{{2}}) {_MONTH} (\d{{4}}) {_TIME} GMT")
# obs-date, rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT
_RFC850 = re.compile(rf"{_LONG_DAY}, (\d{{2}})-{_MONTH}-(\d{{2}}) {_TIME} GMT")
# obs-date, asctime-date: Sun Nov  6 08:49:37 1994
_ASCTIME = re.compile(rf"{_DAY} {_MONTH} ([ \d]\d) {_TIME} (\d{{4}})")

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2}))?"
)
_ETAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"')
_DIGITS = re.compile(r"[0-9]+")

# RFC 9110 §5.6.2-§5.6.4: token, quoted-string (with quoted-pair), OWS.
TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
QUOTED_STRING = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_OWS = " \t"
_TOKEN_RE = re.compile(TOKEN)
_QUOTED_RE = re.compile(QUOTED_STRING)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)

# RFC 9110 §8.3.1: media-type = type "/" subtype parameters, where
# parameters = *( OWS ";" OWS [ parameter ] ) and parameter = token "=" ( token / quoted-string )
_PARAM = rf"[ \t]*;[ \t]*(?:({TOKEN})=({TOKEN}|{QUOTED_STRING}))?"
_MEDIA_TYPE = re.compile(rf"({TOKEN})/({TOKEN})((?:{_PARAM})*)")
_PARAM_RE = re.compile(_PARAM)

# RFC 9110 §11.6.1: challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_AUTH_PARAM = re.compile(rf"{TOKEN}[ \t]*=[ \t]*(?:{TOKEN}|{QUOTED_STRING})")

# RFC 3986 Appendix A, URI-reference = URI / relative-ref.
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT_ENC = r"%[0-9A-Fa-f]{2}"


def _one_of(chars: str) -> str:
    """One of ``chars`` or a pct-encoded octet."""
    return rf"(?:[{chars}]|{_PCT_ENC})"


_PCHAR = _one_of(_UNRESERVED + _SUB_DELIMS + ":@")
_H16 = r"[0-9A-Fa-f]{1,4}"
_DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_DEC_OCTET}(?:\.{_DEC_OCTET}){{3}}"
_LS32 = rf"(?:{_H16}:{_H16}|{_IPV4})"
_IPV6 = "(?:" + "|".join([
    rf"(?:{_H16}:){{6}}{_LS32}",
    rf"::(?:{_H16}:){{5}}{_LS32}",
    rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
    rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
    rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
    rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
]) + ")"  # fmt: skip
_IP_LITERAL = rf"\[(?:{_IPV6}|v[0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+)\]"
_HOST = rf"(?:{_IP_LITERAL}|{_one_of(_UNRESERVED + _SUB_DELIMS)}*)"  # reg-name covers IPv4
_AUTHORITY = rf"(?:{_one_of(_UNRESERVED + _SUB_DELIMS + ':')}*@)?{_HOST}(?::[0-9]*)?"
_SEGMENTS = rf"(?:/{_PCHAR}*)*"  # path-abempty
# what hier-part and relative-part share: "//" authority path-abempty / path-absolute
_ROOTED = rf"//{_AUTHORITY}{_SEGMENTS}|/(?:{_PCHAR}+{_SEGMENTS})?"
_URI = rf"[A-Za-z][A-Za-z0-9+\-.]*:(?:{_ROOTED}|{_PCHAR}+{_SEGMENTS}|)"  # path-rootless
_RELATIVE_REF = rf"(?:{_ROOTED}|{_one_of(_UNRESERVED + _SUB_DELIMS + '@')}+{_SEGMENTS}|)"
_QUERY_FRAGMENT = rf"(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
_URI_REFERENCE = re.compile(rf"(?:{_URI}|{_RELATIVE_REF}){_QUERY_FRAGMENT}")


def _build(year: int, month: int, day: int, hh: int, mm: int, ss: int) -> datetime | None:
    if ss > 60:
        return None  # 60 is a leap second; 61 and up are no time
    try:
        # A leap second (60) is allowed by the grammar; clamp it for datetime.
        return datetime(year, month, day, hh, mm, min(ss, 59), tzinfo=UTC)
    except ValueError:
        return None


def parse_imf_fixdate(value: str) -> datetime | None:
    """The instant of an IMF-fixdate, or ``None`` when ``value`` is not one."""
    m = _IMF_FIXDATE.fullmatch(value)
    if m is None:
        return None
    day, mon, year, hh, mm, ss = m.groups()
    return _build(int(year), _MONTH_NUM[mon], int(day), int(hh), int(mm), int(ss))


def parse_http_date(value: str) -> datetime | None:
    """Any HTTP-date a recipient must accept: IMF-fixdate or the two obsolete forms."""
    parsed = parse_imf_fixdate(value)
    if parsed is not None:
        return parsed
    m = _RFC850.fullmatch(value)
    if m is not None:
        day, mon, yy, hh, mm, ss = m.groups()
        # RFC 9110 §5.6.7: two-digit years more than 50 years ahead are in the past;
        # without a clock we use the common 1970 pivot.
        year = 1900 + int(yy) if int(yy) >= 70 else 2000 + int(yy)
        return _build(year, _MONTH_NUM[mon], int(day), int(hh), int(mm), int(ss))
    m = _ASCTIME.fullmatch(value)
    if m is not None:
        mon, day, hh, mm, ss, yyyy = m.groups()
        return _build(int(yyyy), _MONTH_NUM[mon], int(day.strip()), int(hh), int(mm), int(ss))
    return None


def is_rfc3339(value: str) -> bool:
    """True for an RFC 3339 full-date or date-time (the profile's wording for dates)."""
    m = _RFC3339.fullmatch(value.strip())
    if m is None:
        return False
    y, mo, d, hh, mi, ss = m.groups()
    if hh is None:
        return _build(int(y), int(mo), int(d), 0, 0, 0) is not None
    if int(ss) > 60:
        return False
    return _build(int(y), int(mo), int(d), int(hh), int(mi), int(ss)) is not None


def parse_retry_after(value: str) -> int | datetime | None:
    """``Retry-After = HTTP-date / delay-seconds``: seconds (int), an instant, or ``None``."""
    v = value.strip()
    if _DIGITS.fullmatch(v):
        return int(v)
    return parse_http_date(v)


def is_entity_tag(value: str) -> bool:
    """``entity-tag = [ W/ ] DQUOTE *etagc DQUOTE``; one tag, not a list, not ``*``."""
    return _ETAG.fullmatch(value.strip()) is not None


@lru_cache(maxsize=256)  # redirect targets repeat; the entries are bounded by the header limit
def is_uri_reference(value: str) -> bool:
    """An RFC 3986 URI-reference (absolute URI or relative reference; ASCII only)."""
    return _URI_REFERENCE.fullmatch(value.strip(_OWS)) is not None


def unquote(value: str) -> str:
    """The text of a token or quoted-string (quotes and quoted-pair backslashes removed)."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return _QUOTED_PAIR.sub(r"\1", value[1:-1])
    return value


@lru_cache(maxsize=256)  # a deployment sends few distinct Content-Type values
def parse_media_type(value: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """``(type/subtype, ((name, value), ...))`` of a media-type (RFC 9110 §8.3.1), both
    names lower-cased and values unquoted; ``None`` when ``value`` does not conform
    (a list of two types, a parameter without ``=``, an unterminated quote)."""
    m = _MEDIA_TYPE.fullmatch(value.strip(_OWS))
    if m is None:
        return None
    params = tuple(
        (p.group(1).lower(), unquote(p.group(2)))
        for p in _PARAM_RE.finditer(m.group(3))
        if p.group(1) is not None
    )
    return f"{m.group(1)}/{m.group(2)}".lower(), params


def media_type(content_type: str | None) -> str:
    """The lower-case ``type/subtype`` of a Content-Type value ('' when absent or
    not a valid media-type: then no media type is declared that a client could rely on)."""
    if not content_type:
        return ""
    parsed = parse_media_type(content_type)
    return parsed[0] if parsed is not None else ""


def media_type_param(content_type: str | None, name: str) -> str | None:
    """A parameter of a Content-Type value (case-insensitive name, quoted-string
    unquoted; the first of a repeated name), or ``None``."""
    parsed = parse_media_type(content_type) if content_type else None
    if parsed is None:
        return None
    for key, val in parsed[1]:
        if key == name:
            return val
    return None


def split_list(value: str) -> list[str]:
    """The elements of a ``#rule`` list (RFC 9110 §5.6.1), split at commas outside
    quoted strings, trimmed; empty elements dropped as recipients must."""
    if '"' not in value:
        return [item for item in (i.strip(_OWS) for i in value.split(",")) if item]
    out: list[str] = []
    start = pos = 0
    size = len(value)
    while pos < size:
        char = value[pos]
        if char == '"':
            q = _QUOTED_RE.match(value, pos)
            pos = q.end() if q is not None else size
            continue
        if char == ",":
            out.append(value[start:pos])
            start = pos + 1
        pos += 1
    out.append(value[start:])
    return [item for item in (i.strip(_OWS) for i in out) if item]


def parse_token_list(value: str) -> tuple[str, ...] | None:
    """``#token`` as a sender must generate it (RFC 9110 §5.6.1, e.g. ``Allow = #method``):
    the tokens, ``()`` for an empty value; ``None`` when an element is not a token or is
    empty (``GET,,PUT``: a sender must not generate empty list elements). A token holds
    no comma or quote, so splitting on commas is exact here."""
    if not value.strip(_OWS):
        return ()
    items = tuple(item.strip(_OWS) for item in value.split(","))
    if any(_TOKEN_RE.fullmatch(item) is None for item in items):
        return None
    return items


def _skip(text: str, pos: int, chars: str) -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _challenge(text: str, pos: int) -> tuple[int, str | None, bool]:
    """One challenge from ``pos``: (where it ends, its auth-scheme or ``None`` when it
    is no challenge, whether it conforms)."""
    size = len(text)
    m = _TOKEN_RE.match(text, pos)
    if m is None:
        return pos, None, False
    scheme, pos = m.group(), m.end()
    if pos < size and text[pos] != " ":
        after = _skip(text, pos, _OWS)
        if after >= size or text[after] == ",":
            return after, scheme, True  # a bare auth-scheme
        return pos, None, False  # e.g. realm="x": an auth-param with no auth-scheme
    pos = _skip(text, pos, " ")
    if pos >= size:
        return pos, scheme, True
    t68 = _TOKEN68.match(text, pos)
    if t68 is not None:
        after = _skip(text, t68.end(), _OWS)
        if after >= size or text[after] == ",":
            return after, scheme, True
    has_param = False
    while True:
        p = _AUTH_PARAM.match(text, pos)
        if p is not None:
            has_param = True
            pos = p.end()
        pos = _skip(text, pos, _OWS)  # an empty #auth-param list may end in OWS ","
        if pos >= size:
            return pos, scheme, True
        if text[pos] != ",":
            return pos, scheme if has_param else None, False
        # a comma: another auth-param of this challenge, or the next challenge
        ahead = _skip(text, pos, _OWS + ",")
        if ahead < size and _AUTH_PARAM.match(text, ahead) is not None:
            pos = ahead
            continue
        return pos, scheme, True


def _resync(text: str, pos: int) -> int:
    """After a syntax error at ``pos``: the next list element that is not a leftover
    auth-param of the broken challenge (commas inside quoted strings skipped)."""
    size = len(text)
    while True:
        while pos < size and text[pos] != ",":
            if text[pos] == '"':
                q = _QUOTED_RE.match(text, pos)
                pos = q.end() if q is not None else size
            else:
                pos += 1
        ahead = _skip(text, pos, _OWS + ",")
        p = _AUTH_PARAM.match(text, ahead) if ahead < size else None
        if p is None:
            return ahead
        pos = p.end()


@lru_cache(maxsize=256)
def parse_challenges(value: str) -> tuple[tuple[str, ...], int]:
    """``#challenge`` (RFC 9110 §11.6.1, WWW-Authenticate and Proxy-Authenticate):
    the auth-schemes of the challenges found, in order, and the number of syntax
    errors. ``realm="x"`` alone is no challenge (it has no auth-scheme), nor is a
    list of only commas; after an error the parser resumes at the next challenge,
    and a broken challenge counts when it has a token68 or an auth-param."""
    text = value.strip(_OWS)
    schemes: list[str] = []
    errors = 0
    pos = 0
    while True:
        pos = _skip(text, pos, _OWS + ",")
        if pos >= len(text):
            return tuple(schemes), errors
        end, scheme, clean = _challenge(text, pos)
        if scheme is not None:
            schemes.append(scheme)
        if not clean:
            errors += 1
            end = _resync(text, end)  # an unterminated quote there swallows the rest
        pos = max(end, pos + 1)


def is_json_media_type(mt: str) -> bool:
    """``application/json`` or any ``+json`` structured-syntax type."""
    return mt == "application/json" or mt.endswith("+json")


# IANA HTTP Status Code Registry (codes marked "Unused" left out on purpose:
# 306 and 418 are not registered for use).
STATUS_REASONS: dict[int, str] = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
    204: "No Content", 205: "Reset Content", 206: "Partial Content", 207: "Multi-Status",
    208: "Already Reported", 226: "IM Used",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other",
    304: "Not Modified", 305: "Use Proxy", 307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict",
    410: "Gone", 411: "Length Required", 412: "Precondition Failed",
    413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type",
    416: "Range Not Satisfiable", 417: "Expectation Failed", 421: "Misdirected Request",
    422: "Unprocessable Content", 423: "Locked", 424: "Failed Dependency",
    425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required",
    429: "Too Many Requests", 431: "Request Header Fields Too Large",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates", 507: "Insufficient Storage", 508: "Loop Detected",
    510: "Not Extended", 511: "Network Authentication Required",
}  # fmt: skip

_EXTRA_REASONS = {306: "(Unused)", 418: "(Unused)"}
IANA_UNUSED = frozenset(_EXTRA_REASONS)  # listed in the registry as "Unused"


def reason_phrase(status: int) -> str:
    """The RFC/IANA reason phrase, or '' for an unregistered code."""
    return STATUS_REASONS.get(status) or _EXTRA_REASONS.get(status, "")
