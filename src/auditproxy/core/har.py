"""HAR 1.2 entries to and from Exchange records, with our audit under ``_audit``.

Pure: no clock, no files. ``to_har_entry`` applies redaction and the body cap, so
whatever it returns is safe to write. ``from_har_entry`` accepts our own lines and
HAR entries written by other tools (browsers, mitmproxy); it raises ``ValueError``
with a one-line reason when an entry is not usable.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from auditproxy.core.findings import Finding, RetryAdvice, Severity, is_compliant
from auditproxy.core.model import Body, Exchange, Headers, RequestHead, ResponseHead, Timing
from auditproxy.core.redact import _URL_HEADERS, REDACTED, Redaction

HAR_VERSION = "1.2"
_TEXT_ENCODINGS = ("identity", "")


# --------------------------------------------------------------------------- writing


def _http_version(v: str) -> str:
    return f"HTTP/{v}" if v and not v.upper().startswith("HTTP") else (v or "HTTP/1.1")


def _iso(epoch: float) -> str:
    dt = datetime.fromtimestamp(epoch, tz=UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(seconds: float | None) -> float:
    return round(max(seconds or 0.0, 0.0) * 1000.0, 3)


def _query_objs(query: str) -> list[dict[str, str]]:
    out = []
    for part in query.split("&") if query else ():
        key, _, value = part.partition("=")
        out.append({"name": unquote_plus(key), "value": unquote_plus(value)})
    return out


def _cookie_objs(values: Iterable[str], *, set_cookie: bool) -> list[dict[str, str]]:
    """Cookie names only: cookie values are credentials and always written as REDACTED."""
    out = []
    for value in values:
        pairs = [value.split(";", 1)[0]] if set_cookie else value.split(";")
        for pair in pairs:
            name = pair.split("=", 1)[0].strip()
            if name:
                out.append({"name": name, "value": "REDACTED"})
    return out


def _decode_text(sample: bytes, *, complete: bool) -> str | None:
    """UTF-8 text, allowing a multi-byte character cut by the cap; None for binary."""
    for cut in range(0, 1 if complete else 4):
        try:
            text = (sample[: len(sample) - cut] if cut else sample).decode("utf-8")
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            return None
        return text
    return None


class _Side:
    """One side's headers in one pass: redacted HAR header objects, cookie values and
    the few fields the entry needs (first value of each, looked up case-insensitively)."""

    __slots__ = ("content_encoding", "content_type", "cookies", "location", "objs")

    def __init__(self, headers: Headers, redaction: Redaction, cookie: str) -> None:
        secret = redaction.headers
        objs: list[dict[str, str]] = []
        cookies: list[str] = []
        ctype = coding = location = None
        for k, v in headers:
            lk = k.lower()
            if lk == "content-type":
                if ctype is None:
                    ctype = v
            elif lk == "content-encoding":
                if coding is None:
                    coding = v
            elif lk == "location":
                if location is None:
                    location = v
            elif lk == cookie:
                cookies.append(v)
            if lk in secret:
                v = REDACTED
            elif lk in _URL_HEADERS and "?" in v:
                v = redaction.url(v)
            objs.append({"name": k, "value": v})
        self.objs = objs
        self.cookies = cookies
        self.content_type = ctype
        self.content_encoding = coding
        self.location = location


def _body_fields(
    body: Body, side: _Side, redaction: Redaction, max_body: int | None
) -> dict[str, Any]:
    """``text``/``encoding``/flags for one side's body, redacted and capped."""
    sample = (
        body.sample if max_body is None or len(body.sample) <= max_body else body.sample[:max_body]
    )
    truncated = body.size > len(sample)
    fields: dict[str, Any] = {"_truncated": truncated}
    if not sample:
        return fields
    mime = side.content_type or ""
    coding = (side.content_encoding or "").strip().lower()
    text = _decode_text(sample, complete=not truncated) if coding in _TEXT_ENCODINGS else None
    if text is None:
        # Binary or compressed: the field names cannot be searched, but a JSON body
        # that is compressed may still hold secrets; keep it only when not JSON-like.
        if "json" in mime.lower() or "form-urlencoded" in mime.lower():
            fields["_redacted_unparseable"] = True
            return fields
        fields["text"] = base64.b64encode(sample).decode("ascii")
        fields["encoding"] = "base64"
        return fields
    safe = redaction.body_text(text, mime=mime, complete=not truncated)
    if safe is None:
        fields["_redacted_unparseable"] = True
    else:
        fields["text"] = safe
    return fields


def _rewritten(exchange: Exchange) -> dict[str, Any] | None:
    """The head the client got instead of the upstream's, and the rules applied."""
    r = exchange.rewritten
    if r is None:
        return None
    return {
        "status": r.head.status,
        "statusText": r.head.reason,
        "headers": [{"name": k, "value": v} for k, v in r.head.headers],
        "rules": list(r.rules),
    }


def to_har_entry(
    exchange: Exchange,
    findings: tuple[Finding, ...],
    advice: RetryAdvice,
    *,
    profile_name: str,
    profile_version: str,
    redaction: Redaction,
    max_body: int | None = None,
) -> dict[str, Any]:
    """One HAR 1.2 entry for ``exchange`` plus ``_audit``; secrets redacted, bodies capped."""
    req, resp = exchange.request, exchange.response
    host = req.host or "localhost"
    target = req.target if req.target.startswith("/") else f"/{req.target}"
    path, qsep, query = target.partition("?")
    safe_query = redaction.query(query)
    url = f"{req.scheme or 'http'}://{host}{path}{qsep}{safe_query}"
    req_side = _Side(req.headers, redaction, "cookie")
    resp_side = _Side(resp.headers, redaction, "set-cookie")

    request: dict[str, Any] = {
        "method": req.method,
        "url": url,
        "httpVersion": _http_version(req.http_version),
        "cookies": _cookie_objs(req_side.cookies, set_cookie=False),
        "headers": req_side.objs,
        "queryString": _query_objs(safe_query),
        "headersSize": -1,
        "bodySize": exchange.request_body.size,
    }
    if exchange.request_body.size:
        body = _body_fields(exchange.request_body, req_side, redaction, max_body)
        post: dict[str, Any] = {"mimeType": req_side.content_type or ""}
        if "text" in body:
            post["text"] = body["text"]
        if "encoding" in body:
            post["_encoding"] = body["encoding"]  # HAR 1.2 postData has no encoding field
        post["_size"] = exchange.request_body.size
        post["_truncated"] = body["_truncated"]
        if body.get("_redacted_unparseable"):
            post["_redacted_unparseable"] = True
        request["postData"] = post

    content: dict[str, Any] = {
        "size": exchange.response_body.size,
        "mimeType": resp_side.content_type or "",
        **_body_fields(exchange.response_body, resp_side, redaction, max_body),
    }
    location = resp_side.location
    response: dict[str, Any] = {
        "status": resp.status,
        "statusText": resp.reason,
        "httpVersion": _http_version(resp.http_version),
        "cookies": _cookie_objs(resp_side.cookies, set_cookie=True),
        "headers": resp_side.objs,
        "content": content,
        "redirectURL": redaction.url(location) if location else "",
        "headersSize": -1,
        "bodySize": exchange.response_body.size,
    }
    t = exchange.timing
    wait = _ms(t.wait)
    total = max(_ms(t.total), wait)
    return {
        "startedDateTime": _iso(t.started),
        "time": total,
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"send": 0, "wait": wait, "receive": round(total - wait, 3)},
        "_audit": {
            "request_id": exchange.request_id,
            "route": exchange.route,
            "origin": exchange.origin,
            "compliant": is_compliant(findings),
            "findings": [f.as_dict() for f in findings],
            "retry_advice": advice.as_dict(),
            "attempt": exchange.attempt,
            "attempts": exchange.attempts,
            "delivered": exchange.delivered,
            "rewritten": _rewritten(exchange),
            "profile": profile_name,
            "profile_version": profile_version,
            "public": exchange.public,
            "error": exchange.error,
            "traceparent": exchange.traceparent,
            "timings": {
                "wait_ms": None if t.wait is None else _ms(t.wait),
                "upstream_ms": None if t.upstream is None else _ms(t.upstream),
                "total_ms": _ms(t.total),
            },
        },
    }


# --------------------------------------------------------------------------- reading


def _obj(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}{key} is missing or not an object")
    return value


def _headers_in(raw: Any, where: str) -> Headers:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError(f"{where}headers is not a list")
    out = []
    for i, h in enumerate(raw):
        if not isinstance(h, Mapping) or not isinstance(h.get("name"), str):
            raise ValueError(f"{where}headers[{i}] has no string 'name'")
        name = h["name"]
        if name.startswith(":"):
            continue  # HTTP/2 pseudo-headers in browser exports
        out.append((name, str(h.get("value", ""))))
    return tuple(out)


def _version_in(raw: Any) -> str:
    v = str(raw or "").strip().lower()
    if v in ("h2", "http/2", "http/2.0"):
        return "2"
    if v in ("h3", "http/3", "http/3.0"):
        return "3"
    return v.removeprefix("http/") or "1.1"


def _body_in(text: Any, encoding: Any, size: Any, truncated: Any) -> Body:
    if not isinstance(text, str):
        sample = b""
    elif encoding == "base64":
        try:
            sample = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"body text is not valid base64: {exc}") from None
    else:
        sample = text.encode("utf-8")
    true_size = size if isinstance(size, int) and size >= 0 else len(sample)
    if truncated is False and isinstance(text, str):
        # Ours and complete: redaction may have changed the length, not the completeness.
        true_size = len(sample)
    elif true_size < len(sample):
        true_size = len(sample)
    return Body(size=true_size, sample=sample)


def _started(raw: Any) -> float:
    if not isinstance(raw, str) or not raw:
        return 0.0
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"startedDateTime {json.dumps(raw)} is not an ISO 8601 date") from None


def from_har_entry(entry: Mapping[str, Any]) -> Exchange:
    """The Exchange an entry describes (ours or another tool's). Raises ValueError."""
    if not isinstance(entry, Mapping):
        raise ValueError("entry is not a JSON object")
    req = _obj(entry, "request", "")
    resp = _obj(entry, "response", "")
    method, url = req.get("method"), req.get("url")
    if not isinstance(method, str) or not method:
        raise ValueError("request.method is missing")
    if not isinstance(url, str) or not url:
        raise ValueError("request.url is missing")
    status = resp.get("status")
    if not isinstance(status, int) or isinstance(status, bool):
        raise ValueError(f"response.status {json.dumps(status)} is not an integer")
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = RequestHead(
        method=method.upper(),
        target=target,
        headers=_headers_in(req.get("headers"), "request."),
        http_version=_version_in(req.get("httpVersion")),
        scheme=parts.scheme or "http",
        host=parts.netloc,
    )
    response = ResponseHead(
        status=status,
        reason=str(resp.get("statusText") or ""),
        headers=_headers_in(resp.get("headers"), "response."),
        http_version=_version_in(resp.get("httpVersion")),
    )
    post = req.get("postData")
    if isinstance(post, Mapping):
        req_body = _body_in(
            post.get("text"),
            post.get("_encoding", post.get("encoding")),
            post.get("_size", req.get("bodySize")),
            post.get("_truncated"),
        )
    else:
        req_body = Body()
    content = resp.get("content")
    if not isinstance(content, Mapping):
        content = {}
    resp_body = _body_in(
        content.get("text"), content.get("encoding"), content.get("size"), content.get("_truncated")
    )
    audit = entry.get("_audit")
    audit = audit if isinstance(audit, Mapping) else {}
    timings = entry.get("timings")
    wait = timings.get("wait") if isinstance(timings, Mapping) else None
    total = entry.get("time")
    attempts = _positive(audit.get("attempts"))
    return Exchange(
        request=request,
        response=response,
        request_body=req_body,
        response_body=resp_body,
        route=str(audit.get("route") or ""),
        origin="proxy" if audit.get("origin") == "proxy" else "upstream",
        public=bool(audit.get("public", False)),
        request_id=str(audit.get("request_id") or ""),
        traceparent=str(audit.get("traceparent") or ""),
        timing=Timing(
            started=_started(entry.get("startedDateTime")),
            wait=wait / 1000.0 if isinstance(wait, int | float) and wait >= 0 else None,
            total=total / 1000.0 if isinstance(total, int | float) and total >= 0 else 0.0,
        ),
        attempt=min(_positive(audit.get("attempt")), attempts),
        attempts=attempts,
        error=audit.get("error") if isinstance(audit.get("error"), str) else None,
        delivered=audit.get("delivered") is not False,
    )


def _positive(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def recorded_findings(entry: Mapping[str, Any]) -> tuple[Finding, ...]:
    """The findings stored in an entry's ``_audit`` (empty for other tools' HAR)."""
    audit = entry.get("_audit")
    raw = audit.get("findings") if isinstance(audit, Mapping) else None
    out = []
    for f in raw if isinstance(raw, list) else ():
        if isinstance(f, Mapping) and isinstance(f.get("rule"), str):
            try:
                severity = Severity(str(f.get("severity")))
            except ValueError:
                continue
            header = f.get("header")
            out.append(
                Finding(
                    rule=f["rule"],
                    severity=severity,
                    message=str(f.get("message") or ""),
                    header=header if isinstance(header, str) else None,
                )
            )
    return tuple(out)
