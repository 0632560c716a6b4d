"""Parsers for the HTTP field syntaxes the rules check. Standard library only.

Each function takes the raw field value and returns a parsed value or ``None``
(never raises). Grammars: RFC 9110 §5.6.7 (HTTP-date), §8.8.3 (entity-tag),
§10.2.3 (Retry-After); RFC 3986 (URI-reference); RFC 3339 (timestamps).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

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
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _build(year: int, month: int, day: int, hh: int, mm: int, ss: int) -> datetime | None:
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


def is_uri_reference(value: str) -> bool:
    """A conservative RFC 3986 URI-reference check (absolute URI or relative reference)."""
    v = value.strip()
    if not v:
        return True  # the empty string is a valid relative reference (same document)
    if _URI_CHARS.fullmatch(v) is None or _PCT.search(v) is not None:
        return False
    if v.count("#") > 1:
        return False
    head = re.split(r"[/?#]", v, maxsplit=1)[0]
    if ":" in head:
        scheme = head.split(":", 1)[0]
        if _SCHEME.fullmatch(scheme) is None:
            return False  # a first path segment may not contain ':' (path-noscheme)
        rest = v[len(scheme) + 1 :]
    else:
        rest = v
    if "[" in rest or "]" in rest:
        # brackets only around an IP-literal host
        if not rest.startswith("//"):
            return False
        authority = re.split(r"[/?#]", rest[2:], maxsplit=1)[0]
        host = authority.rsplit("@", 1)[-1]
        if not re.fullmatch(r"\[[0-9A-Fa-f:.vV\-_~!$&'()*+,;=]+\](?::\d*)?", host):
            return False
        tail = rest[2 + len(authority) :]
        if "[" in tail or "]" in tail:
            return False
    return True


def media_type(content_type: str | None) -> str:
    """The lower-case ``type/subtype`` of a Content-Type value ('' when absent)."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def media_type_param(content_type: str | None, name: str) -> str | None:
    """A parameter of a Content-Type value (case-insensitive name, quotes removed)."""
    if not content_type:
        return None
    for part in content_type.split(";")[1:]:
        key, sep, val = part.partition("=")
        if sep and key.strip().lower() == name:
            return val.strip().strip('"')
    return None


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
