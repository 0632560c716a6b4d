"""Redaction of a HAR entry written by another tool (a browser, mitmproxy).

Our own recordings are redacted at capture time; a HAR from elsewhere holds
tokens in clear (``Authorization``, cookies, ``?access_token=``). ``redact_entry``
applies the same ``Redaction`` rules to such an entry, so nothing an offline
command prints or writes carries them. Pure; the input is not modified.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditproxy.core.redact import REDACTED, Redaction

_BODY_DROPPED = "_redacted_unparseable"


def _headers(raw: Any, redaction: Redaction) -> Any:
    if not isinstance(raw, list):
        return raw
    out = []
    for h in raw:
        if isinstance(h, Mapping) and isinstance(h.get("name"), str):
            value = h.get("value")
            if isinstance(value, str):
                h = {**h, "value": redaction.header(h["name"], value)}
        out.append(h)
    return out


def _values(raw: Any, secret: frozenset[str] | None) -> Any:
    """Name/value pairs (query parameters, cookies) with secret values replaced;
    every value when ``secret`` is None."""
    if not isinstance(raw, list):
        return raw
    out = []
    for item in raw:
        if isinstance(item, Mapping) and "value" in item:
            name = str(item.get("name", "")).lower()
            if secret is None or name in secret:
                item = {**item, "value": REDACTED}
        out.append(item)
    return out


def _body(raw: Any, redaction: Redaction) -> Any:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("text"), str):
        return raw
    body = dict(raw)
    if body.get("encoding") == "base64" or body.get("_encoding") == "base64":
        mime = str(body.get("mimeType") or "").lower()
        if "json" in mime or "form-urlencoded" in mime:
            del body["text"]
            body[_BODY_DROPPED] = True
        return body
    safe = redaction.body_text(
        body["text"], mime=str(body.get("mimeType") or ""), complete=not body.get("_truncated")
    )
    if safe is None:
        del body["text"]
        body[_BODY_DROPPED] = True
    else:
        body["text"] = safe
    return body


def redact_entry(entry: Mapping[str, Any], redaction: Redaction) -> dict[str, Any]:
    """A copy of ``entry`` with secret headers, cookies, query parameters and JSON
    body fields replaced by ``REDACTED`` (a body that cannot be checked is dropped)."""
    out = dict(entry)
    req = entry.get("request")
    if isinstance(req, Mapping):
        r = dict(req)
        if isinstance(r.get("url"), str):
            r["url"] = redaction.url(r["url"])
        r["headers"] = _headers(r.get("headers"), redaction)
        r["queryString"] = _values(r.get("queryString"), redaction.query_params)
        r["cookies"] = _values(r.get("cookies"), None)
        if "postData" in r:
            r["postData"] = _body(r["postData"], redaction)
        out["request"] = r
    resp = entry.get("response")
    if isinstance(resp, Mapping):
        s = dict(resp)
        s["headers"] = _headers(s.get("headers"), redaction)
        s["cookies"] = _values(s.get("cookies"), None)
        if isinstance(s.get("redirectURL"), str):
            s["redirectURL"] = redaction.url(s["redirectURL"])
        if "content" in s:
            s["content"] = _body(s["content"], redaction)
        out["response"] = s
    return out
