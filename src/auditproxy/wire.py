"""What the traffic handler needs from the two connections it sits between.

The handler (``proxy.py``) is written against these two seams only, so the HTTP
implementation below them can change without touching its stages:

- the client side: a :class:`ClientRequest` (the parsed request head and its
  body, chunk by chunk) and a :class:`Reply` (the one way back to the client);
- the upstream side: an :class:`Upstream` that performs one attempt and returns
  an :class:`UpstreamResponse` head whose body is read chunk by chunk, or raises
  :class:`UpstreamError` (already classified).

Header lists are ``(name, value)`` pairs as sent. The handler gives end-to-end
headers only; framing (``Content-Length`` or chunked), ``Date`` when absent and
the connection's keep-alive are the writer's business.

Cancellation: the handler's deadline sweeper cancels the task that waits on a
read; an implementation must leave nothing half-open behind (a cancelled
upstream read closes that connection; it is never reused).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

HeaderPairs = tuple[tuple[str, str], ...]

# SPEC §5: connect (refused, DNS, connect timeout), timeout (no head within
# response_headers, idle mid-body), reset (closed before the response was
# complete), protocol (malformed status line, header section or framing).
ErrorKind = Literal["connect", "timeout", "reset", "protocol"]


class UpstreamError(Exception):
    """An upstream failure, already classified."""

    def __init__(self, kind: ErrorKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind: ErrorKind = kind
        self.detail = detail


class ClientBodyError(Exception):
    """The client's request body failed: ``kind`` is ``body_too_large``,
    ``client_read_timeout`` or ``client_disconnected``."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the server refused a request before the handler could forward it:
    ``status`` 400 (malformed, ambiguous framing), 414, 431, 408 (head too slow)
    or 501; the connection is closed after the answer."""

    status: int
    kind: str  # problem type suffix, e.g. "bad-request", "headers-too-large"
    detail: str


class ClientRequest(Protocol):
    """One request as the client sent it. A request the server's parser refused
    still reaches the handler, with ``rejection`` set and whatever of the head
    was parsed (possibly an empty method and target), so that every answer goes
    through the same finish step."""

    @property
    def rejection(self) -> Rejection | None: ...

    @property
    def method(self) -> str: ...  # as received (extension methods included)
    @property
    def target(self) -> str: ...  # the raw request-target
    @property
    def path(self) -> str: ...  # the decoded path of the target, for routing
    @property
    def version(self) -> str: ...  # "1.1", "1.0"
    @property
    def headers(self) -> HeaderPairs: ...
    @property
    def scheme(self) -> str: ...  # "http" or "https" as the client reached the proxy
    @property
    def host(self) -> str: ...  # the Host the client asked for
    @property
    def remote(self) -> str: ...  # the client's address, "" when unknown
    @property
    def content_length(self) -> int | None: ...
    @property
    def has_body(self) -> bool: ...  # Content-Length > 0 or chunked

    async def read(self) -> bytes:
        """The next chunk of the request body, ``b""`` once it is complete. The
        server enforces the body's limits here: raises :class:`ClientBodyError`
        (``body_too_large``, ``client_read_timeout``, ``client_disconnected``)."""
        ...


class Reply(Protocol):
    """The response to one client request: either ``send`` (a whole response in
    one write) or ``start`` then ``write``... then ``end``; ``abort`` closes the
    connection without finishing, so a truncated body is never taken for a whole
    one. Each method returns ``False`` (never raises) when the client is gone."""

    @property
    def started(self) -> bool: ...  # some byte of the head may have reached the client

    async def send(self, status: int, reason: str, headers: HeaderPairs, body: bytes) -> bool: ...
    async def start(self, status: int, reason: str, headers: HeaderPairs) -> bool: ...
    async def write(self, chunk: bytes) -> bool: ...
    async def end(self) -> bool: ...
    def abort(self) -> None: ...

    async def pause(self, delay: float) -> bool:
        """Wait ``delay`` seconds (a retry's back-off); ``False`` as soon as the
        client is gone."""
        ...


class UpstreamResponse(Protocol):
    """The head of an upstream response and its body, read chunk by chunk."""

    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def headers(self) -> HeaderPairs: ...
    @property
    def version(self) -> str: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def bytes_received(self) -> int: ...  # body bytes so far (idle-timeout progress)

    async def read(self) -> bytes:
        """The next body chunk, ``b""`` at the end; raises ``UpstreamError``."""
        ...

    async def read_all(self) -> bytes:
        """The whole (small) body; raises ``UpstreamError``."""
        ...

    def release(self) -> None:
        """Done with the response: its connection is reused only when the body
        was read to the end, else closed."""
        ...


class Upstream(Protocol):
    """One attempt at a request; pooled keep-alive connections underneath."""

    async def send(
        self,
        base: str,
        method: str,
        target: str,
        headers: HeaderPairs,
        body: bytes | AsyncIterator[bytes] | None,
    ) -> UpstreamResponse:
        """Send the request to ``base`` (``scheme://authority[/path]``) + ``target``
        and return once the response head arrived; raises ``UpstreamError``."""
        ...

    async def close(self) -> None: ...
