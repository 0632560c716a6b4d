"""The upstream side: one pooled keep-alive ClientSession, and the one place where
aiohttp's exceptions are mapped to the SPEC §5 error kinds.

Kinds: ``connect`` (refused, DNS, connect timeout), ``timeout`` (no head within
``response_headers`` or idle mid-body beyond ``idle``), ``reset`` (closed before the
response was complete), ``protocol`` (malformed status line, header or framing).
"""

from __future__ import annotations

import asyncio
from typing import Literal

import aiohttp
from aiohttp import ClientSession, ClientTimeout, DummyCookieJar, TCPConnector, hdrs

from auditproxy.settings import Settings

ErrorKind = Literal["connect", "timeout", "reset", "protocol"]

# Headers aiohttp's client would add on its own; the proxy forwards only what the
# client sent, so these are never added automatically.
_SKIP_AUTO_HEADERS = (hdrs.ACCEPT, hdrs.ACCEPT_ENCODING, hdrs.USER_AGENT, hdrs.CONTENT_TYPE)


class UpstreamError(Exception):
    """An upstream failure, already classified."""

    def __init__(self, kind: ErrorKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind: ErrorKind = kind
        self.detail = detail


def classify(exc: BaseException) -> UpstreamError:
    """Map an aiohttp/asyncio exception from talking to the upstream to a kind."""
    if isinstance(exc, UpstreamError):
        return exc
    detail = str(exc) or type(exc).__name__
    kind: ErrorKind
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        kind = "connect"
    elif isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        kind = "timeout"
        detail = detail if str(exc) else "upstream timed out"
    elif isinstance(exc, aiohttp.ClientResponseError):
        kind = "protocol"  # the response parser rejected the status line or headers
    elif isinstance(exc, aiohttp.ClientPayloadError):
        kind = "protocol" if "Bad chunk" in detail or "Invalid" in detail else "reset"
    elif isinstance(exc, aiohttp.ClientConnectionError | OSError):
        kind = "reset"
    else:
        kind = "protocol"
    return UpstreamError(kind, detail)


def make_session(settings: Settings) -> ClientSession:
    """The proxy's one pooled keep-alive session: no decompression, no cookie jar
    (upstream cookies must never leak to other clients), no automatic headers."""
    connector = TCPConnector(
        limit=settings.limits.max_connections,
        limit_per_host=0,
        keepalive_timeout=max(15.0, settings.timeouts.idle),
        ttl_dns_cache=60,
    )
    return ClientSession(
        connector=connector,
        auto_decompress=False,
        cookie_jar=DummyCookieJar(),
        skip_auto_headers=_SKIP_AUTO_HEADERS,
        timeout=ClientTimeout(total=None),
        trust_env=False,
        raise_for_status=False,
    )


def request_timeout(settings: Settings) -> ClientTimeout:
    """Per-request timeouts; ``sock_read`` covers the wait for the response head
    (it starts once the request is fully sent) and is switched to ``idle`` for the
    body by the proxy after the head arrived."""
    t = settings.timeouts
    return ClientTimeout(total=t.total, connect=t.connect, sock_read=t.response_headers)


def set_idle_timeout(response: aiohttp.ClientResponse, idle: float) -> None:
    """From now on, a pause longer than ``idle`` while reading the body times out."""
    conn = response.connection
    if conn is not None and conn.protocol is not None:
        conn.protocol.read_timeout = idle
