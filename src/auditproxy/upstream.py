"""The upstream side over aiohttp: one pooled keep-alive ClientSession behind the
``wire.Upstream`` seam (one attempt per ``send``), and the one place where
aiohttp's exceptions are mapped to the SPEC §5 error kinds.

Kinds: ``connect`` (refused, DNS, connect timeout), ``timeout`` (no head within
``response_headers`` or idle mid-body beyond ``idle``), ``reset`` (closed before the
response was complete), ``protocol`` (malformed status line, header or framing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

import aiohttp
from aiohttp import ClientResponse, ClientSession, ClientTimeout, DummyCookieJar, TCPConnector, hdrs
from yarl import URL

from auditproxy.settings import Settings
from auditproxy.wire import ErrorKind, HeaderPairs, UpstreamError

__all__ = ["AiohttpUpstream", "UpstreamError", "classify"]

# Headers aiohttp's client would add on its own; the proxy forwards only what the
# client sent, so these are never added automatically.
_SKIP_AUTO_HEADERS = (hdrs.ACCEPT, hdrs.ACCEPT_ENCODING, hdrs.USER_AGENT, hdrs.CONTENT_TYPE)


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
    """What aiohttp itself enforces per request: only ``connect`` (which costs no
    timer when a pooled connection is reused). ``response_headers``, ``idle`` and
    ``total`` are enforced by one ``Deadlines`` sweeper for all requests, instead of
    two or three timer handles armed, re-armed per chunk and cancelled per request."""
    return ClientTimeout(total=None, connect=settings.timeouts.connect, sock_read=None)


_VERSIONS = {(1, 1): "1.1", (1, 0): "1.0"}


class _Response:
    """``wire.UpstreamResponse`` over an aiohttp ClientResponse."""

    __slots__ = ("_done", "_resp", "content_length", "headers", "reason", "status", "version")

    def __init__(self, resp: ClientResponse) -> None:
        self._resp = resp
        self._done = False
        self.status = resp.status
        self.reason = resp.reason or ""
        self.headers: HeaderPairs = tuple(resp.headers.items())
        v = resp.version
        self.version = (_VERSIONS.get((v.major, v.minor)) or f"{v.major}.{v.minor}") if v else "1.1"
        self.content_length = resp.content_length

    @property
    def bytes_received(self) -> int:
        return self._resp.content.total_bytes

    async def read(self) -> bytes:
        chunk = await self._guarded(self._resp.content.readany())
        if not chunk:
            self._done = True
        return chunk

    async def read_all(self) -> bytes:
        data = await self._guarded(self._resp.read())
        self._done = True
        return data

    async def _guarded(self, read: Awaitable[bytes]) -> bytes:
        """A body read; any failure or cancellation closes the connection."""
        try:
            return await read
        except asyncio.CancelledError:
            self._resp.close()
            raise
        except Exception as exc:
            self._resp.close()
            raise classify(exc) from exc

    def release(self) -> None:
        if self._done:
            self._resp.release()
        else:
            self._resp.close()  # not read to the end: never reused


class AiohttpUpstream:
    """``wire.Upstream`` over the one pooled ClientSession of the process."""

    def __init__(self, settings: Settings) -> None:
        self._session = make_session(settings)
        self._timeout = request_timeout(settings)

    async def send(
        self,
        base: str,
        method: str,
        target: str,
        headers: HeaderPairs,
        body: bytes | AsyncIterator[bytes] | None,
    ) -> _Response:
        try:
            resp = await self._session.request(
                method,
                URL(base + target, encoded=True),
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=self._timeout,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise classify(exc) from exc
        return _Response(resp)

    async def close(self) -> None:
        await self._session.close()
