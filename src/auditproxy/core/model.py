"""Plain, frozen records of one HTTP exchange, built once at the edge.

Nothing here does I/O. Header lists keep the original spelling and order (so a
recording shows what was on the wire); look-ups are case-insensitive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Headers = tuple[tuple[str, str], ...]
Origin = Literal["upstream", "proxy"]


def header_values(headers: Headers, name: str) -> list[str]:
    """All values of ``name`` (case-insensitive), in order."""
    lname = name.lower()
    return [v for k, v in headers if k.lower() == lname]


def header_value(headers: Headers, name: str) -> str | None:
    """The first value of ``name`` or ``None``; case-insensitive."""
    lname = name.lower()
    for k, v in headers:
        if k.lower() == lname:
            return v
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Body:
    """What was seen of a message body: the true size and a capped sample."""

    size: int = 0
    sample: bytes = b""

    @property
    def truncated(self) -> bool:
        return self.size > len(self.sample)


EMPTY_BODY = Body()


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestHead:
    method: str  # upper case as received
    target: str  # origin-form: path plus optional ?query
    headers: Headers = ()
    http_version: str = "1.1"
    scheme: str = "http"
    host: str = ""  # the Host the client asked for

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    def headers_all(self, name: str) -> list[str]:
        return header_values(self.headers, name)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        parts = self.target.split("?", 1)
        return parts[1] if len(parts) == 2 else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseHead:
    status: int
    reason: str = ""
    headers: Headers = ()
    http_version: str = "1.1"

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    def headers_all(self, name: str) -> list[str]:
        return header_values(self.headers, name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """Clock readings supplied by the shell (the core reads no clock).

    ``started`` is wall-clock epoch seconds; the rest are durations in seconds.
    ``wait`` is until the response head arrived, ``upstream`` until the last
    body byte arrived from the upstream, ``total`` until the client got the end.
    """

    started: float = 0.0
    wait: float | None = None
    upstream: float | None = None
    total: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """One request/response pair as the auditor sees it.

    ``response`` is the upstream's own response head, before anything the proxy
    adds or rewrites. ``origin`` is ``"proxy"`` when the proxy itself answered
    (502/504, 4xx for malformed requests).
    """

    request: RequestHead
    response: ResponseHead
    request_body: Body = EMPTY_BODY
    response_body: Body = EMPTY_BODY
    route: str = "other"
    origin: Origin = "upstream"
    public: bool = False  # the route is configured as truly public (ARP.01 CORS)
    request_id: str = ""
    traceparent: str = ""
    client_address: str = ""
    timing: Timing = field(default_factory=Timing)
    attempt: int = 1  # which attempt at the upstream this is (retries count up)
    attempts: int = 1  # how many attempts the client's request took in all
    error: str | None = None  # upstream error kind when origin == "proxy" after a failure
    rewritten: Rewritten | None = None  # what the client got instead, when rewritten
    delivered: bool = True  # the client received the whole response


@dataclass(frozen=True, slots=True, kw_only=True)
class Rewritten:
    """The response head the client got after the rewrite rules, and which
    rules changed it (``name:action`` each)."""

    head: ResponseHead
    rules: tuple[str, ...] = ()
