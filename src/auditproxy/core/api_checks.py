"""Checks for the DIGG REST API profile beyond the API Response chapter: URLs,
security, tracing, payloads, dates, versions and request handling
(rule-catalog §5.6-§5.10). Same contract as ``core/checks.py``: a check takes
the context and its rule's parameters and returns ``None`` or message values.

The URL checks judge the route template (``/orders/{id}/line_items``), never
the id values in a concrete path; their findings have category ``url``, which
the report counts once per route. Body checks run on the capped sample, only
for bodies the JSON check parses, and share its parse and one walk.
Credentials are never put into a message: only parameter names and schemes.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import unquote_plus

from auditproxy.core.bodywalk import Walk
from auditproxy.core.checkctx import PASS, CheckSpec, Ctx, Hit
from auditproxy.core.httpsyntax import (
    is_json_media_type,
    media_type,
    media_type_param,
    parse_challenges,
    parse_media_type,
    split_list,
)
from auditproxy.core.redact import REDACTED
from auditproxy.core.routes import VERSION_SEGMENT, is_api_info

BODY_MAX = 16384  # bytes; the JSON check parses bodies up to this size
_PLACEHOLDER = re.compile(r"\{[^/{}]*\}")
_HUMP = re.compile(r"[a-z0-9][A-Z]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9-]{0,19})\s+\S")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
_SF_DATE = re.compile(r"@-?[0-9]{1,15}")


# --- URLs (UFN, VER.05) ----------------------------------------------------------


@lru_cache(maxsize=2048)  # route labels are bounded; a route is judged once
def _segments(route: str) -> tuple[str, ...]:
    """The literal parts of a route template's segments (placeholders removed)."""
    route = route.split("?", 1)[0]
    if route.endswith("..."):  # a label cut at its maximum length
        route = route[:-3]
    return tuple(s for s in (_PLACEHOLDER.sub("", seg) for seg in route.split("/")) if s)


def url_length(ctx: Ctx, *, max_length: int = 2048) -> Hit:
    """The request URL (scheme, host and target) is longer than ``max_length``."""
    req = ctx.ex.request
    length = len(req.target) + (len(req.scheme) + 3 + len(req.host) if req.host else 0)
    return {"length": length, "max_length": max_length} if length > max_length else PASS


def path_chars(
    ctx: Ctx,
    *,
    allowed: str = "abcdefghijklmnopqrstuvwxyz0123456789-.~",
    reported_elsewhere: str = "_ ",
) -> Hit:
    """A route segment has characters outside ``allowed`` (those in
    ``reported_elsewhere`` are left to the underscore-and-space rule)."""
    found = _bad_chars(ctx.route_template, allowed + reported_elsewhere)
    return PASS if found is None else {"segment": found[0], "chars": found[1]}


@lru_cache(maxsize=2048)
def _bad_chars(route: str, allowed: str) -> tuple[str, str] | None:
    ok = set(allowed)
    for seg in _segments(route):
        bad = {c for c in seg if c not in ok}
        if bad:
            return seg[:60], "".join(sorted(bad))[:20]
    return None


def path_word_separators(ctx: Ctx) -> Hit:
    """A route segment joins words by case (lineItems, LineItems), not by hyphens."""
    for seg in _segments(ctx.route_template):
        if _HUMP.search(seg):
            return {"segment": seg[:60]}
    return PASS


def path_underscore_space(ctx: Ctx) -> Hit:
    """A route segment (the path, not the query) contains ``_`` or a space."""
    for seg in _segments(ctx.route_template):
        if "_" in seg or " " in seg or "%20" in seg:
            return {"segment": seg[:60]}
    return PASS


def url_major_version(ctx: Ctx) -> Hit:
    """No segment of the route template is a major version ``v<N>``."""
    route = ctx.route_template
    if any(VERSION_SEGMENT.fullmatch(seg) for seg in _segments(route)):
        return PASS
    return {"route": route[:80]}


# --- security (SAK) ------------------------------------------------------------------


def _scheme(authorization: str) -> str | None:
    """The auth-scheme of an ``Authorization`` value; ``None`` for a recording's
    redacted value, whose scheme cannot be judged."""
    value = authorization.strip()
    if value == REDACTED:
        return None
    m = _SCHEME.match(value)
    # A value without "<scheme> <credentials>" is a bare credential: never echo it.
    return m.group(1) if m else "(none: a bare credential)"


def auth_scheme_forbidden(ctx: Ctx, *, schemes: Sequence[str] = ("Basic", "Digest")) -> Hit:
    """The request authenticates with, or the response offers, one of ``schemes``."""
    banned = {s.lower() for s in schemes}
    auth = ctx.request_header("Authorization")
    if auth is not None:
        scheme = _scheme(auth)
        if scheme is not None and scheme.lower() in banned:
            return {"scheme": scheme, "where": "the request's Authorization"}
    for challenges in ctx.h.get("www-authenticate", ()):
        for offered in parse_challenges(challenges)[0]:
            if offered.lower() in banned:
                return {
                    "scheme": offered,
                    "where": "WWW-Authenticate",
                    "_header": "WWW-Authenticate",
                }
    return PASS


def auth_scheme_bearer(ctx: Ctx, *, allowed: Sequence[str] = ("Bearer", "DPoP")) -> Hit:
    """The request's ``Authorization`` uses a scheme other than ``allowed``."""
    auth = ctx.request_header("Authorization")
    if auth is None:
        return PASS
    scheme = _scheme(auth)
    if scheme is None or scheme.lower() in {a.lower() for a in allowed}:
        return PASS
    return {"scheme": scheme}


def query_credentials(
    ctx: Ctx,
    *,
    names: Sequence[str] = ("api_key", "apikey", "key", "access_token", "token", "client_secret"),
) -> Hit:
    """A query parameter is named like a credential (its value is never shown)."""
    query = ctx.ex.request.query
    if not query:
        return PASS
    wanted = {n.lower() for n in names}
    for pair in query.split("&"):
        name = unquote_plus(pair.split("=", 1)[0]).strip().lower()
        if name in wanted:
            return {"param": name[:40]}
    return PASS


@lru_cache(maxsize=32)
def _pattern(literals: tuple[str, ...]) -> re.Pattern[bytes]:
    return re.compile(b"|".join(re.escape(p.encode()) for p in literals))


def error_internals(
    ctx: Ctx, *, patterns: Sequence[str] = ("Traceback (most recent call last)",)
) -> Hit:
    """The body sample of an error contains one of ``patterns`` (stack traces,
    exception class names, SQL error text), matched case-sensitively."""
    body = ctx.ex.response_body
    if not body.sample or ctx.method == "HEAD" or not ctx.identity_coded():
        return PASS
    m = _pattern(tuple(patterns)).search(body.sample)
    return {"pattern": m.group(0).decode("utf-8", "replace")[:60]} if m else PASS


# --- tracing (SPA, W3C Trace Context) -------------------------------------------------


@lru_cache(maxsize=64)  # the response's value is judged by two rules in a row
def _trace_id(value: str | None) -> str | None:
    """The trace-id of a valid version-00-compatible traceparent, else None."""
    if value is None:
        return None
    value = value.strip()
    m = _TRACEPARENT.match(value)
    if m is None or m.group(1) == "ff" or m.group(2) == _ZERO_TRACE or m.group(3) == _ZERO_SPAN:
        return None
    if m.group(1) == "00" and m.end() != len(value):
        return None  # version 00 has exactly four fields
    return m.group(2)


def traceparent_syntax(ctx: Ctx) -> Hit:
    """The response's ``traceparent`` is not a valid W3C trace context."""
    value = ctx.header("traceparent")
    if value is None or _trace_id(value) is not None:
        return PASS
    return {"value": value[:80]}


def trace_continuity(ctx: Ctx) -> Hit:
    """The response's trace-id differs from the one the request carried upstream."""
    sent = _trace_id(ctx.ex.traceparent or ctx.request_header("traceparent"))
    got = _trace_id(ctx.header("traceparent"))
    if sent is None or got is None or sent == got:
        return PASS
    return {"request_trace": sent, "response_trace": got}


def id_without_traceparent(
    ctx: Ctx, *, headers: Sequence[str] = ("X-Request-Id", "X-Correlation-Id")
) -> Hit:
    """The response carries a custom request id but no ``traceparent``."""
    if ctx.header("traceparent") is not None:
        return PASS
    for name in headers:
        if ctx.header(name.lower()) is not None:
            return {"_header": name}
    return PASS


# --- payloads (AME) and dates in payloads (DOT) -----------------------------------------


def json_representation(ctx: Ctx) -> Hit:
    """Content of a media type other than JSON (a missing Content-Type is left to
    RFC9110-CONTENT-TYPE-PRESENT)."""
    mt = ctx.media_type
    if ctx.method == "HEAD" or ctx.body_size == 0 or not mt or is_json_media_type(mt):
        return PASS
    return {"type": mt}


def _named(walked: Walk, style: str, reserved: Sequence[str]) -> list[str]:
    return [k for k in walked.by_style().get(style, ()) if k not in reserved]


def field_naming(
    ctx: Ctx,
    *,
    styles: Sequence[str] = ("other",),
    reserved: Sequence[str] = ("_links", "_embedded"),
    max_bytes: int = BODY_MAX,
) -> Hit:
    """A field name at any depth has one of ``styles`` (see ``bodywalk.naming_style``)."""
    walked = ctx.json_walk(max_bytes)
    if walked is None:
        return PASS
    bad = sorted(k for style in styles for k in _named(walked, style, reserved))
    if not bad:
        return PASS
    return {"field": bad[0][:40], "path": walked.path_of(key=bad[0])[:80], "count": len(bad)}


def naming_mixed(
    ctx: Ctx, *, reserved: Sequence[str] = ("_links", "_embedded"), max_bytes: int = BODY_MAX
) -> Hit:
    """The body's field names mix camelCase and snake_case."""
    walked = ctx.json_walk(max_bytes)
    if walked is None:
        return PASS
    camel, snake = _named(walked, "camel", reserved), _named(walked, "snake", reserved)
    if camel and snake:
        return {"camel": camel[0][:40], "snake": snake[0][:40]}
    return PASS


def payload_dates(ctx: Ctx, *, problem: str = "format", max_bytes: int = BODY_MAX) -> Hit:
    """A date-like string value has ``problem`` (``format``: not RFC 3339;
    ``no-zone``: no offset; ``not-utc``: an offset other than UTC)."""
    walked = ctx.json_walk(max_bytes)
    if walked is None or not walked.dates:
        return PASS
    bad = walked.date_problems().get(problem)
    if not bad:
        return PASS
    return {"value": bad[0][:40], "path": walked.path_of(value=bad[0])[:80], "count": len(bad)}


# --- versions (VER) ----------------------------------------------------------------------


def api_info_resource(ctx: Ctx, *, resource: str = "api-info") -> Hit:
    """A GET of ``<api root>/api-info`` is not answered 2xx with JSON."""
    if not is_api_info(ctx.route_template, resource):
        return PASS
    if not 200 <= ctx.status <= 299:
        return {"why": f"answered {ctx.status}"}
    if not is_json_media_type(ctx.media_type):
        return {"why": f"answered {ctx.media_type or 'no media type'}"}
    return PASS


def deprecation_syntax(ctx: Ctx) -> Hit:
    """``Deprecation`` is not a structured-field date such as ``@1688169599``."""
    value = ctx.header("deprecation")
    if value is None or _SF_DATE.fullmatch(value.strip()):
        return PASS
    return {"value": value[:80]}


# --- request handling (ARQ, SAK.29): what the API accepted ----------------------------------


def _request_media(ctx: Ctx) -> tuple[str, str | None]:
    ct = ctx.request_header("Content-Type")
    return media_type(ct), ct


def request_not_utf8(ctx: Ctx) -> Hit:
    """The API accepted a text or JSON/XML request body declared in another charset
    than UTF-8, or (when its sample is at hand) whose bytes are not UTF-8."""
    body = ctx.ex.request_body
    if body.size == 0:
        return PASS
    mt, ct = _request_media(ctx)
    textual = mt.startswith("text/") or mt.endswith(("/json", "+json", "/xml", "+xml"))
    if not textual:
        return PASS
    charset = media_type_param(ct, "charset")
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        return {"why": f"charset={charset[:20]}"}
    try:
        codecs.utf_8_decode(body.sample, "strict", not body.truncated)
    except UnicodeDecodeError:
        return {"why": "bytes that are not valid UTF-8"}
    return PASS


def request_content_type(
    ctx: Ctx,
    *,
    types: Sequence[str] = ("application/json", "application/xml", "multipart/form-data"),
) -> Hit:
    """The API accepted a request body without a Content-Type, or of a type
    outside ``types`` (``+json``/``+xml`` types count as listed)."""
    if ctx.ex.request_body.size == 0:
        return PASS
    mt, _ = _request_media(ctx)
    if mt and (mt in types or mt.endswith(("+json", "+xml"))):
        return PASS
    return {"type": mt or "no Content-Type"}


@lru_cache(maxsize=256)  # clients send few distinct Accept values
def _accepted(accept: str) -> tuple[str, ...] | None:
    """The media ranges of ``Accept`` with q > 0 (ranges that are not media ranges
    skipped); ``None`` when any is a wildcard."""
    out: list[str] = []
    for item in split_list(accept):
        parsed = parse_media_type(item)  # media-range has the media-type grammar
        if parsed is None:
            continue
        rng, params = parsed
        q = 1.0
        for key, value in params:
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 1.0
        if q <= 0:
            continue  # q=0: explicitly not acceptable
        if rng.endswith("/*"):
            return None
        out.append(rng)
    return tuple(out)


def accept_ignored(ctx: Ctx) -> Hit:
    """The client asked for JSON or XML only and the API answered with another type."""
    accept = ctx.request_header("Accept")
    mt = ctx.media_type
    if accept is None or ctx.body_size == 0 or not mt or ctx.method == "HEAD":
        return PASS
    ranges = _accepted(accept)
    if not ranges:
        return PASS
    profile_types = [r for r in ranges if r.endswith(("/json", "+json", "/xml", "+xml"))]
    if len(profile_types) != len(ranges) or mt in ranges:
        return PASS
    if mt == "application/problem+json" and "application/json" in ranges:
        return PASS
    return {"type": mt, "accept": accept[:80]}


API_CHECKS: dict[str, CheckSpec] = {
    "url_length": CheckSpec(url_length, "head", "url"),
    "path_chars": CheckSpec(path_chars, "head", "url"),
    "path_word_separators": CheckSpec(path_word_separators, "head", "url"),
    "path_underscore_space": CheckSpec(path_underscore_space, "head", "url"),
    "url_major_version": CheckSpec(url_major_version, "head", "url"),
    "auth_scheme_forbidden": CheckSpec(auth_scheme_forbidden, "head", "other", "Authorization"),
    "auth_scheme_bearer": CheckSpec(auth_scheme_bearer, "head", "other", "Authorization"),
    "query_credentials": CheckSpec(query_credentials, "head", "other"),
    "error_internals": CheckSpec(error_internals, "body", "error_format"),
    "traceparent_syntax": CheckSpec(traceparent_syntax, "head", "header_syntax", "traceparent"),
    "trace_continuity": CheckSpec(trace_continuity, "head", "other", "traceparent"),
    "id_without_traceparent": CheckSpec(id_without_traceparent, "head", "other"),
    "json_representation": CheckSpec(json_representation, "body", "body", "Content-Type"),
    "field_naming": CheckSpec(field_naming, "body", "body"),
    "naming_mixed": CheckSpec(naming_mixed, "body", "body"),
    "payload_dates": CheckSpec(payload_dates, "body", "body"),
    "api_info_resource": CheckSpec(api_info_resource, "body", "other"),
    "deprecation_syntax": CheckSpec(deprecation_syntax, "head", "header_syntax", "Deprecation"),
    "request_not_utf8": CheckSpec(request_not_utf8, "body", "other", "Content-Type"),
    "request_content_type": CheckSpec(request_content_type, "body", "other", "Content-Type"),
    "accept_ignored": CheckSpec(accept_ignored, "body", "other", "Accept"),
}
