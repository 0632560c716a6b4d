"""Pure header transforms for forwarding (SPEC §5). No I/O, no clock, no randomness.

Inbound (client -> upstream): hop-by-hop fields out (the RFC 9110 §7.6.1 list plus
every name listed in ``Connection``), ``Forwarded``/``X-Forwarded-*``/``Via`` in,
``Host`` kept or dropped (the HTTP client then sets the upstream's authority),
``X-Request-Id``/``traceparent`` set to the values the shell decided on.
Outbound (upstream -> client): hop-by-hop fields out, ``Via`` appended.

Header lists are ``(name, value)`` pairs in wire order with the original spelling.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

HeaderList = list[tuple[str, str]]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
VIA_VALUE = "1.1 auditproxy"

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def valid_traceparent(value: str | None) -> bool:
    """True for a W3C trace-context version-00 ``traceparent`` with non-zero ids."""
    if not value:
        return False
    m = _TRACEPARENT.match(value.strip())
    return m is not None and m.group(1) != _ZERO_TRACE and m.group(2) != _ZERO_SPAN


def _end_to_end(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """``(lower-cased name, name, value)`` of every field that is not hop-by-hop,
    including the fields named in ``Connection``. One pass, one ``lower()`` per
    field; a second pass only when ``Connection`` names other fields."""
    out: list[tuple[str, str, str]] = []
    conn: list[str] = []
    for k, v in headers:
        lk = k.lower()
        if lk in HOP_BY_HOP:
            if lk == "connection":
                conn.append(v)
            continue
        out.append((lk, k, v))
    if conn:
        extra = {t.strip().lower() for v in conn for t in v.split(",")}
        extra.discard("")
        if extra:
            out = [t for t in out if t[0] not in extra]
    return out


def _forwarded_node(address: str) -> str:
    if ":" in address:  # IPv6 literal: quoted and bracketed (RFC 7239 §6)
        return f'"[{address}]"'
    return address or "unknown"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def forwarded_element(*, client: str, proto: str, host: str) -> str:
    """One RFC 7239 ``Forwarded`` element for this hop."""
    element = f"for={_forwarded_node(client)};proto={proto}"
    if host:
        element += f";host={_quote(host)}"
    return element


def outbound_request_headers(
    headers: Iterable[tuple[str, str]],
    *,
    client: str,
    proto: str,
    host: str,
    preserve_host: bool,
    request_id: str,
    traceparent: str,
) -> HeaderList:
    """The header list to send upstream for a client request with ``headers``.

    ``X-Forwarded-For``, ``Forwarded`` and ``Via`` are appended to (one merged
    field each); ``X-Forwarded-Proto``/``-Host`` are kept when a front proxy set
    them and added otherwise.
    """
    out: HeaderList = []
    xff: list[str] = []
    fwd: list[str] = []
    via: list[str] = []
    seen_proto = seen_host = False
    for lk, k, v in _end_to_end(headers):
        if lk == "host":
            if preserve_host:
                out.append((k, v))
        elif lk == "x-forwarded-for":
            xff.append(v)
        elif lk == "forwarded":
            fwd.append(v)
        elif lk == "via":
            via.append(v)
        elif lk in ("x-request-id", "traceparent"):
            continue
        else:
            if lk == "x-forwarded-proto":
                seen_proto = True
            elif lk == "x-forwarded-host":
                seen_host = True
            out.append((k, v))
    xff.append(client or "unknown")
    fwd.append(forwarded_element(client=client, proto=proto, host=host))
    via.append(VIA_VALUE)
    out.append(("X-Forwarded-For", ", ".join(xff)))
    out.append(("Forwarded", ", ".join(fwd)))
    out.append(("Via", ", ".join(via)))
    if not seen_proto:
        out.append(("X-Forwarded-Proto", proto))
    if not seen_host and host:
        out.append(("X-Forwarded-Host", host))
    out.append(("X-Request-Id", request_id))
    out.append(("traceparent", traceparent))
    return out


def outbound_response_headers(headers: Iterable[tuple[str, str]], *, request_id: str) -> HeaderList:
    """The header list to send to the client for an upstream response.

    ``Via`` is appended; ``X-Request-Id`` is echoed when the upstream sent none.
    ``Date`` is not touched here: the HTTP server adds it when absent
    (RFC 9110 §6.6.1), and the audit sees the upstream's own head anyway.
    """
    out: HeaderList = []
    via: list[str] = []
    has_request_id = False
    for lk, k, v in _end_to_end(headers):
        if lk == "via":
            via.append(v)
            continue
        if lk == "x-request-id":
            has_request_id = True
        out.append((k, v))
    via.append(VIA_VALUE)
    out.append(("Via", ", ".join(via)))
    if not has_request_id and request_id:
        out.append(("X-Request-Id", request_id))
    return out


def absolute_form_authority(target: str) -> str | None:
    """The lower-cased ``host[:port]`` of an absolute-form target, else None."""
    lower = target[:8].lower()
    for scheme in ("http://", "https://"):
        if lower.startswith(scheme):
            rest = target[len(scheme) :]
            end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
            return rest[:end].rsplit("@", 1)[-1].lower()
    return None


def origin_form(target: str) -> str:
    """``/path?query`` of an absolute-form target (``/`` when the path is empty)."""
    authority_start = target.find("//") + 2
    slash = target.find("/", authority_start)
    query = target.find("?", authority_start)
    if slash < 0 or (0 <= query < slash):
        return "/" + (target[query:] if query >= 0 else "")
    return target[slash:]
