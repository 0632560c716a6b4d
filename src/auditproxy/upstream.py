"""The upstream side: one pooled keep-alive ClientSession, and the one place where
aiohttp's exceptions are mapped to the SPEC §5 error kinds.

Kinds: ``connect`` (refused, DNS, connect timeout), ``timeout`` (no head within
``response_headers`` or idle mid-body beyond ``idle``), ``reset`` (closed before the
response was complete), ``protocol`` (malformed status line, header or framing).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import aiohttp
from aiohttp import ClientSession, ClientTimeout, DummyCookieJar, TCPConnector, hdrs

from auditproxy.settings import Settings
from auditproxy.wire import ErrorKind, UpstreamError

__all__ = ["Deadlines", "UpstreamError", "classify", "make_session", "request_timeout"]

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


class Watched(Protocol):
    def check(self, now: float) -> None:
        """Compare the item's deadlines with ``now`` (``time.perf_counter``) and
        cancel its task when one has passed."""


class Deadlines:
    """One coarse timer for every upstream wait in flight.

    Every ``interval`` seconds (while anything is watched) each watched item is
    asked to ``check`` its deadlines. A timeout therefore fires between its limit
    and its limit plus ``interval`` after the event it measures from, never early;
    at 100 ms that is well inside the tolerance of limits measured in seconds."""

    __slots__ = ("_handle", "_loop", "_watched", "interval")

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._watched: dict[Watched, None] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._watched)

    def add(self, item: Watched) -> None:
        self._watched[item] = None
        if self._handle is None or self._loop is not asyncio.get_running_loop():
            self._arm()

    def discard(self, item: Watched) -> None:
        self._watched.pop(item, None)

    def _arm(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self.interval, self._sweep)

    def _sweep(self) -> None:
        self._handle = None
        if not self._watched:
            return  # re-armed by the next add
        now = time.perf_counter()
        for item in list(self._watched):
            try:
                item.check(now)
            except Exception:  # one broken item must not stop the others' timeouts
                self._watched.pop(item, None)
        self._arm()
