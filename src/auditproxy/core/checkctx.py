"""The check context ``Ctx`` (one exchange as the checks see it) and the check record.

Everything a check may ask more than once is computed on first use and kept
on the context: the response header index, the media type, the parsed JSON
body and the walk over its field names and date-like strings (``bodywalk``).
Every body check of an exchange shares one parse and one walk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from auditproxy.core.bodywalk import Walk, walk
from auditproxy.core.findings import Category
from auditproxy.core.httpsyntax import is_json_media_type, media_type
from auditproxy.core.model import Exchange
from auditproxy.core.profile import Profile
from auditproxy.core.routes import OTHER, auto_template

Hit = Mapping[str, Any] | None
PASS: Hit = None
FAIL: Mapping[str, Any] = {}
_UNSET = object()

# The walk of the last JSON body walked, keyed by its sample (the object itself,
# held here so its identity cannot be reused): the report's per-API naming tally
# is fed the exchange right after the engine audited it and reuses this walk
# instead of parsing the body again (see ``shared_walk``).
_last_walk: tuple[bytes, Walk] | None = None
_auto_template = lru_cache(maxsize=1024)(auto_template)


class Ctx:
    """One exchange as the checks see it. The response headers are indexed once
    by lower-case name; the media type, the parsed JSON body and its walk are
    computed on first use and shared by every check of the exchange."""

    __slots__ = (
        "_json", "_media_type", "_rh", "_route", "_walk", "ex", "h", "method", "profile", "status"
    )  # fmt: skip

    def __init__(self, ex: Exchange, profile: Profile) -> None:
        self.ex = ex
        self.profile = profile
        self.status = ex.response.status
        self.method = ex.request.method
        h: dict[str, list[str]] = {}
        for k, v in ex.response.headers:
            values = h.get(k)
            if values is None:
                lk = k.lower()
                values = h.get(lk)
                if values is None:
                    values = h[lk] = []
            values.append(v)
        self.h = h
        self._media_type: str | None = None
        self._json: object = _UNSET
        self._walk: object = _UNSET
        self._route: str | None = None
        self._rh: dict[str, str] | None = None

    def headers(self) -> dict[str, list[str]]:
        """Response headers by lower-case name (built once per exchange)."""
        return self.h

    def header(self, name: str) -> str | None:
        """The first value of response header ``name`` (fastest with a lower-case name)."""
        values = self.h.get(name)
        if values is None and not name.islower():
            values = self.h.get(name.lower())
        return values[0] if values else None

    def request_header(self, name: str) -> str | None:
        """The first value of request header ``name`` (index built on first use)."""
        rh = self._rh
        if rh is None:
            rh = {}
            for k, v in self.ex.request.headers:
                rh.setdefault(k.lower(), v)
            self._rh = rh
        return rh.get(name if name.islower() else name.lower())

    @property
    def media_type(self) -> str:
        mt = self._media_type
        if mt is None:
            mt = self._media_type = media_type(self.header("content-type"))
        return mt

    @property
    def body_size(self) -> int:
        return self.ex.response_body.size

    @property
    def route_template(self) -> str:
        """The route label the URL rules judge; past the label cap (``other``) the
        path with its id segments collapsed."""
        route = self._route
        if route is None:
            route = self.ex.route
            if not route or route == OTHER:
                route = _auto_template(self.ex.request.path)
            self._route = route
        return route

    def json_body(self) -> tuple[bool | None, object]:
        """(True, doc) when the body parses, (False, error) when it does not,
        (None, None) when it cannot be judged: empty, truncated sample, or a
        content coding (gzip, br) the sample is still wrapped in. Parsed at
        most once per exchange."""
        cached = self._json
        if cached is _UNSET:
            cached = self._parse_json()
            self._json = cached
        return cached  # type: ignore[return-value]

    def judgeable_json(self) -> bytes | None:
        """The complete, identity-coded body sample, or ``None`` when it cannot be judged."""
        body = self.ex.response_body
        if body.size == 0 or body.truncated or not self.identity_coded():
            return None
        return body.sample

    def identity_coded(self) -> bool:
        """True when the body sample is not wrapped in a content coding (gzip, br)."""
        coding = self.header("content-encoding")
        return coding is None or coding.strip().lower() in ("", "identity")

    def _parse_json(self) -> tuple[bool | None, object]:
        sample = self.judgeable_json()
        if sample is None:
            return (None, None)
        try:
            return (True, json.loads(sample, parse_constant=reject_constant))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return (False, exc)

    def json_walk(self, max_bytes: int) -> Walk | None:
        """The walk of a JSON body (declared JSON, parsed, at most ``max_bytes``
        unless that is 0), or ``None``. Walked at most once per exchange."""
        if not is_json_media_type(self.media_type):
            return None
        if 0 < max_bytes < self.body_size:
            return None  # body rules run on bodies the JSON check parses, not larger
        cached = self._walk
        if cached is _UNSET:
            global _last_walk
            ok, doc = self.json_body()
            cached = None
            if ok:
                cached = walk(doc)
                _last_walk = (self.ex.response_body.sample, cached)
            self._walk = cached
        return cached  # type: ignore[return-value]


def shared_walk(ex: Exchange, profile: Profile, max_bytes: int) -> Walk | None:
    """The walk of ``ex``'s JSON body: the engine's own when it was the last one
    walked (the live path: the report is fed right after the audit), else a fresh
    one. Same result either way."""
    last = _last_walk
    if last is not None and last[0] is ex.response_body.sample and ex.response_body.size:
        if 0 < max_bytes < ex.response_body.size:
            return None
        return last[1]
    return Ctx(ex, profile).json_walk(max_bytes)


def reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value (RFC 8259)")


@dataclass(frozen=True, slots=True)
class CheckSpec:
    fn: Callable[..., Hit]
    phase: Literal["head", "body"]
    category: Category
    header: str | None = None  # default header; a ``header`` param overrides it
    doc: str = ""
