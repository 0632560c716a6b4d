"""Plain, frozen records of one HTTP exchange, built once at the edge.

Nothing here does I/O. Header lists keep the original spelling and order (so a
recording shows what was on the wire); look-ups are case-insensitive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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
    attempts: int = 1
    error: str | None = None  # upstream error kind when origin == "proxy" after a failure


# --- fast constructors for the proxy's hot path -------------------------------------
# A frozen dataclass's __init__ goes through object.__setattr__ (a type look-up) for
# every field. These set the slots through their descriptors directly: the same
# records (equal, hashable, frozen, dataclasses.replace works), built in about half
# the time. Every field is given, in declaration order.

_new = object.__new__


def _setters(cls: type, names: str) -> list[Any]:
    return [cls.__dict__[n].__set__ for n in names.split()]


_rq = _setters(RequestHead, "method target headers http_version scheme host")
_rs = _setters(ResponseHead, "status reason headers http_version")
_tm = _setters(Timing, "started wait upstream total")
_bd = _setters(Body, "size sample")
_ex = _setters(
    Exchange,
    "request response request_body response_body route origin public request_id "
    "traceparent client_address timing attempts error",
)


def new_request_head(
    method: str, target: str, headers: Headers, http_version: str, scheme: str, host: str
) -> RequestHead:
    o: RequestHead = _new(RequestHead)
    s = _rq
    s[0](o, method), s[1](o, target), s[2](o, headers)
    s[3](o, http_version), s[4](o, scheme), s[5](o, host)
    return o


def new_response_head(
    status: int, reason: str, headers: Headers, http_version: str
) -> ResponseHead:
    o: ResponseHead = _new(ResponseHead)
    s = _rs
    s[0](o, status), s[1](o, reason), s[2](o, headers), s[3](o, http_version)
    return o


def new_timing(started: float, wait: float | None, upstream: float | None, total: float) -> Timing:
    o: Timing = _new(Timing)
    s = _tm
    s[0](o, started), s[1](o, wait), s[2](o, upstream), s[3](o, total)
    return o


def new_body(size: int, sample: bytes) -> Body:
    o: Body = _new(Body)
    _bd[0](o, size), _bd[1](o, sample)
    return o


def new_exchange(
    request: RequestHead,
    response: ResponseHead,
    request_body: Body,
    response_body: Body,
    route: str,
    origin: Origin,
    public: bool,
    request_id: str,
    traceparent: str,
    client_address: str,
    timing: Timing,
    attempts: int = 1,
    error: str | None = None,
) -> Exchange:
    o: Exchange = _new(Exchange)
    s = _ex
    s[0](o, request), s[1](o, response), s[2](o, request_body), s[3](o, response_body)
    s[4](o, route), s[5](o, origin), s[6](o, public), s[7](o, request_id)
    s[8](o, traceparent), s[9](o, client_address), s[10](o, timing), s[11](o, attempts)
    s[12](o, error)
    return o
