"""The check functions and the explicit ``CHECKS`` registry.

A check is a plain function ``check(ctx, *, **params) -> Hit``: ``None`` when
the exchange passes, otherwise a mapping of values for the rule's message
template. Three keys are reserved: ``_severity`` (a milder severity for a
milder case), ``_message`` (another template) and ``_header`` (the header
involved, when the rule does not fix it). A rule row picks a check by name
and gives its keyword parameters; the loader binds them against the
signature once, so the signature is the schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from auditproxy.core.api_checks import API_CHECKS
from auditproxy.core.checkctx import FAIL as _FAIL
from auditproxy.core.checkctx import PASS as _PASS
from auditproxy.core.checkctx import CheckSpec, Ctx, Hit
from auditproxy.core.httpsyntax import (
    IANA_UNUSED,
    STATUS_REASONS,
    is_entity_tag,
    is_json_media_type,
    is_rfc3339,
    is_uri_reference,
    media_type,
    media_type_param,
    parse_challenges,
    parse_http_date,
    parse_imf_fixdate,
    parse_media_type,
    parse_retry_after,
    parse_token_list,
)

__all__ = ["CHECKS", "CheckSpec", "Ctx", "Hit"]

# --- status ------------------------------------------------------------------


def status_range(ctx: Ctx, *, low: int = 100, high: int = 599) -> Hit:
    """The status code is outside the valid range."""
    return _PASS if low <= ctx.status <= high else _FAIL


def method_status(
    ctx: Ctx,
    *,
    method_aliases: Mapping[str, str] | None = None,
    outside_severity: str = "may",
    outside_message: str = "",
) -> Hit:
    """The (method, status) pair is not in the status x method matrix."""
    p = ctx.profile
    method = (method_aliases or {}).get(ctx.method, ctx.method)
    status = ctx.status
    if method not in p.matrix_methods or not 200 <= status <= 599:
        return _PASS  # methods outside the matrix and 1xx interim responses: no opinion
    allowed = p.matrix.get(status)
    if allowed is not None:
        if method in allowed:
            return _PASS
        order = [m for m in p.matrix_methods if m in allowed]
        return {"allowed": ", ".join(order) or "no method", "matrix_method": method}
    row = p.handling.get(status)
    if row is not None and row.unused:
        return _PASS  # reported by the unused-status rule
    if row is None and status not in STATUS_REASONS:
        return _PASS  # unknown codes are reported by the unknown-status rule
    hit: dict[str, Any] = {"_severity": outside_severity, "matrix_method": method}
    if outside_message:
        hit["_message"] = outside_message
    return hit


def unused_status(ctx: Ctx) -> Hit:
    """The status is one the handling table marks as not used."""
    row = ctx.profile.handling.get(ctx.status)
    return _FAIL if row is not None and row.unused else _PASS


def unknown_status(ctx: Ctx, *, extra_known: Sequence[int] = (), unused_message: str = "") -> Hit:
    """A valid-range code in neither guideline table nor registered for use by IANA;
    ``unused_message`` words the finding for codes IANA lists as Unused (306, 418)."""
    s = ctx.status
    p = ctx.profile
    if not 100 <= s <= 599 or s in STATUS_REASONS or s in p.matrix or s in p.handling:
        return _PASS
    if s in extra_known:
        return _PASS
    return {"_message": unused_message} if unused_message and s in IANA_UNUSED else _FAIL


# --- required headers ----------------------------------------------------------


def header_required(ctx: Ctx, *, header: str, nonempty: bool = False) -> Hit:
    """The response lacks ``header`` (or, with ``nonempty``, has it empty)."""
    value = ctx.header(header)
    if value is None or (nonempty and not value.strip()):
        return _FAIL
    return _PASS


def challenge_required(ctx: Ctx, *, header: str) -> Hit:
    """The response has no ``header`` line with a challenge (RFC 9110 §11.6.1): an
    absent or empty field, ``realm="x"`` without an auth-scheme and a list of only
    commas all leave it without one."""
    for value in ctx.h.get(header, ()):
        if parse_challenges(value)[0]:
            return _PASS
    return _FAIL


def content_range_206(ctx: Ctx) -> Hit:
    """A 206 has neither Content-Range nor a multipart/byteranges body with a boundary."""
    if ctx.header("content-range") is not None:
        return _PASS
    ct = ctx.header("content-type")
    if media_type(ct) == "multipart/byteranges" and media_type_param(ct, "boundary"):
        return _PASS
    return _FAIL


def content_type_present(ctx: Ctx) -> Hit:
    """The response has content but no Content-Type."""
    if ctx.body_size > 0 and ctx.header("content-type") is None:
        return _FAIL
    return _PASS


# --- header syntax -------------------------------------------------------------
# Each syntax check judges every line of its field, not only the first: a field
# sent on several lines is not combined into one value (RFC 9110 §5.3 allows that
# for list-based fields only), and a repeated singleton is RFC9110-SINGLETON-REPEATED's.


def _bad_line(values: Sequence[str] | None, ok: Callable[[str], bool]) -> Hit:
    """``{"value": v}`` for the first of ``values`` that ``ok`` rejects, else PASS."""
    for value in values or ():
        if not ok(value):
            return {"value": value[:80]}
    return _PASS


# A Date changes once a second and repeats on every response meanwhile: cached.
@lru_cache(maxsize=64)
def _imf(value: str) -> bool:
    return parse_imf_fixdate(value.strip()) is not None


@lru_cache(maxsize=64)
def _http_date(value: str) -> bool:
    return parse_http_date(value.strip()) is not None


def imf_fixdate(ctx: Ctx, *, header: str) -> Hit:
    """A line of ``header`` is not an IMF-fixdate."""
    return _bad_line(ctx.h.get(header), _imf)


def rfc3339_header_date(ctx: Ctx, *, headers: Sequence[str] = ("Date", "Expires")) -> Hit:
    """A line of one of ``headers`` carries an RFC 3339 timestamp (the profile's wording)."""
    for name in headers:
        for value in ctx.h.get(name.lower(), ()):
            if is_rfc3339(value):
                return {"_header": name, "value": value[:80]}
    return _PASS


def retry_after_syntax(ctx: Ctx) -> Hit:
    """A Retry-After line is neither delay-seconds nor an HTTP-date."""
    return _bad_line(ctx.h.get("retry-after"), lambda v: parse_retry_after(v) is not None)


def etag_syntax(ctx: Ctx) -> Hit:
    """An ETag line is not one (optionally weak) quoted entity-tag."""
    return _bad_line(ctx.h.get("etag"), is_entity_tag)


def location_syntax(ctx: Ctx) -> Hit:
    """A Location line is not a valid URI-reference."""
    return _bad_line(ctx.h.get("location"), is_uri_reference)


def content_type_syntax(ctx: Ctx) -> Hit:
    """A Content-Type line is not a media-type (a list of types, a parameter without
    a value, an unterminated quoted string)."""
    return _bad_line(ctx.h.get("content-type"), lambda v: parse_media_type(v) is not None)


def allow_syntax(ctx: Ctx) -> Hit:
    """An Allow line is not a comma-separated list of method tokens (``Allow: `` is
    valid: no method allowed; an empty element such as ``GET,,PUT`` is not, since
    RFC 9110 §5.6.1 forbids a sender to generate one)."""
    return _bad_line(ctx.h.get("allow"), lambda v: parse_token_list(v) is not None)


def singleton_repeated(ctx: Ctx, *, headers: Sequence[str], content_length_differ: str = "") -> Hit:
    """A field defined as one value (``headers``) arrives on several lines. Recipients
    may combine only list-based fields (RFC 9110 §5.3), so each picks a line of its own.
    Content-Length with identical values is reported too (RFC 9110 §8.6 lets a
    recipient reject it); with differing values ``content_length_differ`` words it."""
    if len(ctx.h) == len(ctx.ex.response.headers):
        return _PASS  # no name occurs twice
    for name in headers:
        values = ctx.h.get(name.lower())
        if values is not None and len(values) > 1:
            hit: dict[str, Any] = {
                "_header": name,
                "count": len(values),
                # a query string (a Location's) may carry a credential: never shown
                "values": " | ".join(v.strip().split("?", 1)[0] for v in values)[:80],
            }
            differ = len({v.strip() for v in values}) > 1
            if content_length_differ and name.lower() == "content-length" and differ:
                hit["_message"] = content_length_differ
            return hit
    return _PASS


def cors_wildcard(
    ctx: Ctx, *, credential_headers: Sequence[str] = ("Authorization", "Cookie")
) -> Hit:
    """A wildcard CORS origin on a route not configured as public, or on a
    request that carried credentials."""
    value = ctx.header("access-control-allow-origin")
    if value is None or value.strip() != "*":
        return _PASS
    if not ctx.ex.public:
        return _FAIL
    for name in credential_headers:
        if ctx.request_header(name) is not None:
            return _FAIL
    return _PASS


def _combined(ctx: Ctx, name: str) -> str | None:
    """The field's lines joined as the Fetch standard's "get" does (``, ``), trimmed."""
    values = ctx.h.get(name)
    if values is None:
        return None
    return ", ".join(v.strip(" \t") for v in values)


def cors_wildcard_credentials(ctx: Ctx) -> Hit:
    """``Access-Control-Allow-Origin: *`` together with ``Allow-Credentials: true``
    (exactly ``true``: Fetch compares the value byte for byte, so ``TRUE`` does not
    enable credentials and is ``cors_credentials_value``'s finding)."""
    if _combined(ctx, "access-control-allow-origin") != "*":
        return _PASS
    return _FAIL if _combined(ctx, "access-control-allow-credentials") == "true" else _PASS


def cors_credentials_value(ctx: Ctx) -> Hit:
    """``Access-Control-Allow-Credentials`` is present but not exactly ``true``, its
    only value: browsers then do not share credentialed responses."""
    value = _combined(ctx, "access-control-allow-credentials")
    return _PASS if value is None or value == "true" else {"value": value[:80]}


# --- body ----------------------------------------------------------------------


def no_content(ctx: Ctx) -> Hit:
    """The response carries body bytes where it must carry none."""
    size = ctx.body_size
    return {"size": size} if size > 0 else _PASS


_JSON_WS = b" \t\n\r"
# First byte of a JSON text -> the bytes its last non-space byte may be.
_JSON_ENDS = {
    **{ord(c): b"0123456789" for c in "-0123456789"},
    ord("{"): b"}",
    ord("["): b"]",
    ord('"'): b'"',
    ord("t"): b"e",
    ord("f"): b"e",
    ord("n"): b"l",
}


def json_framing_error(sample: bytes) -> str | None:
    """Why ``sample`` cannot be one JSON text, judged by its first and last
    non-space bytes only (for example an HTML page, or an object cut short);
    ``None`` when they fit. Never flags what ``json.loads`` would accept: UTF-8
    BOM skipped, UTF-16/32 and non-ASCII starts not judged."""
    i, j = 0, len(sample) - 1
    if sample.startswith(b"\xef\xbb\xbf"):
        i = 3
    if b"\x00" in sample[i : i + 4]:
        return None  # UTF-16/32: json.loads detects and decodes these
    while i <= j and sample[i] in _JSON_WS:
        i += 1
    while j >= i and sample[j] in _JSON_WS:
        j -= 1
    if i > j:
        return "no JSON value"
    first = sample[i]
    if first >= 0x80:
        return None
    ends = _JSON_ENDS.get(first)
    if ends is None:
        return f"starts with {sample[i : i + 1].decode('latin-1')!r}"
    if i == j and first not in b"0123456789":
        return "cut short"  # one byte is a JSON text only as a digit
    if sample[j] not in ends:
        return f"ends with {sample[j : j + 1].decode('latin-1')!r}"
    return None


def json_parse(ctx: Ctx, *, max_bytes: int = 16384) -> Hit:
    """A body declared as JSON does not parse (never judged on a truncated sample).

    Bodies larger than ``max_bytes`` are not parsed (that costs about 7 µs per
    KiB); they get only a framing check of their first and last bytes, which
    catches HTML error pages and cut-off documents but not errors in between.
    ``max_bytes: 0`` parses every body."""
    if not is_json_media_type(ctx.media_type):
        return _PASS
    if 0 < max_bytes < ctx.ex.response_body.size:
        sample = ctx.judgeable_json()
        if sample is None:
            return _PASS
        reason = json_framing_error(sample)
        if reason is None:
            return _PASS
        return {"error": f"{reason}; only the framing of bodies over {max_bytes} bytes is checked"}
    ok, err = ctx.json_body()
    if ok is False:
        return {"error": str(err)[:120]}
    return _PASS


# --- error format ----------------------------------------------------------------


def problem_media_type(
    ctx: Ctx,
    *,
    types: Sequence[str] = ("application/problem+json", "application/problem+xml"),
) -> Hit:
    """An error response with content that is not problem details."""
    if ctx.method == "HEAD" or ctx.body_size == 0:
        return _PASS
    mt = ctx.media_type
    if mt in types:
        return _PASS
    if not mt and ctx.header("content-type") is not None:
        return {"type": "an invalid Content-Type"}
    return {"type": mt or "no media type"}


def _problem_doc(ctx: Ctx) -> dict[str, Any] | None:
    if ctx.media_type != "application/problem+json":
        return None
    ok, doc = ctx.json_body()
    return doc if ok and isinstance(doc, dict) else None


def problem_members(
    ctx: Ctx,
    *,
    members: Sequence[str] = ("type", "title", "status", "detail", "instance"),
) -> Hit:
    """A problem document lacks some of the expected members."""
    doc = _problem_doc(ctx)
    if doc is None:
        return _PASS
    missing = [m for m in members if m not in doc]
    return {"members": ", ".join(missing)} if missing else _PASS


def problem_status_match(ctx: Ctx) -> Hit:
    """The problem document's ``status`` differs from the HTTP status."""
    doc = _problem_doc(ctx)
    if doc is None or "status" not in doc:
        return _PASS
    value = doc["status"]
    if isinstance(value, int) and not isinstance(value, bool) and value == ctx.status:
        return _PASS
    return {"problem_status": json.dumps(value)[:40]}


# --- generic, used by roadmap rows -----------------------------------------------


def header_absent(ctx: Ctx, *, header: str) -> Hit:
    """The response carries ``header`` where it should not."""
    return _PASS if ctx.header(header) is None else _FAIL


def http_date(ctx: Ctx, *, header: str) -> Hit:
    """A line of ``header`` is not any HTTP-date (obsolete forms accepted)."""
    return _bad_line(ctx.h.get(header), _http_date)


def body_required(ctx: Ctx) -> Hit:
    """The response has no content where some is expected."""
    if ctx.method == "HEAD":
        return _PASS
    return _FAIL if ctx.body_size == 0 else _PASS


def header_token(ctx: Ctx, *, header: str, token: str) -> Hit:
    """``header`` does not list ``token`` (case-insensitive, comma-separated)."""
    values = ctx.headers().get(header.lower(), [])
    tokens = {t.strip().lower() for v in values for t in v.split(",")}
    return _PASS if token.lower() in tokens else _FAIL


CHECKS: dict[str, CheckSpec] = {
    "status_range": CheckSpec(status_range, "head", "status"),
    "method_status": CheckSpec(method_status, "head", "status"),
    "unused_status": CheckSpec(unused_status, "head", "status"),
    "unknown_status": CheckSpec(unknown_status, "head", "status"),
    "header_required": CheckSpec(header_required, "head", "missing_header"),
    "challenge_required": CheckSpec(challenge_required, "head", "missing_header"),
    "content_range_206": CheckSpec(content_range_206, "head", "missing_header", "Content-Range"),
    "content_type_present": CheckSpec(
        content_type_present, "body", "missing_header", "Content-Type"
    ),
    "imf_fixdate": CheckSpec(imf_fixdate, "head", "header_syntax"),
    "rfc3339_header_date": CheckSpec(rfc3339_header_date, "head", "header_syntax"),
    "retry_after_syntax": CheckSpec(retry_after_syntax, "head", "header_syntax", "Retry-After"),
    "etag_syntax": CheckSpec(etag_syntax, "head", "header_syntax", "ETag"),
    "location_syntax": CheckSpec(location_syntax, "head", "header_syntax", "Location"),
    "content_type_syntax": CheckSpec(content_type_syntax, "head", "header_syntax", "Content-Type"),
    "allow_syntax": CheckSpec(allow_syntax, "head", "header_syntax", "Allow"),
    "singleton_repeated": CheckSpec(singleton_repeated, "head", "header_syntax"),
    "cors_wildcard": CheckSpec(
        cors_wildcard, "head", "header_syntax", "Access-Control-Allow-Origin"
    ),
    "cors_wildcard_credentials": CheckSpec(
        cors_wildcard_credentials, "head", "header_syntax", "Access-Control-Allow-Origin"
    ),
    "cors_credentials_value": CheckSpec(
        cors_credentials_value, "head", "header_syntax", "Access-Control-Allow-Credentials"
    ),
    "no_content": CheckSpec(no_content, "body", "body"),
    "json_parse": CheckSpec(json_parse, "body", "body", "Content-Type"),
    "problem_media_type": CheckSpec(problem_media_type, "body", "error_format", "Content-Type"),
    "problem_members": CheckSpec(problem_members, "body", "error_format"),
    "problem_status_match": CheckSpec(problem_status_match, "body", "error_format"),
    "header_absent": CheckSpec(header_absent, "head", "header_syntax"),
    "http_date": CheckSpec(http_date, "head", "header_syntax"),
    "body_required": CheckSpec(body_required, "body", "body"),
    "header_token": CheckSpec(header_token, "head", "header_syntax"),
    **API_CHECKS,
}
