"""The response rewrite actions (SPEC §11): each a value that maps a head to a head.

Header actions apply on every status, unlike nginx's ``add_header``:

- ``set_header: {Name: value}``: every field of that name is replaced by one with
  the value; added when absent.
- ``add_header_if_missing: {Name: value}``: added only when the response has no
  field of that name at all (any value, even empty, counts as present).
- ``remove_header: [Name, ...]``: every field of these names is removed.
- ``cors_origin: {allow: [origin, ...]}``: ``Access-Control-Allow-Origin: *``
  becomes the request's ``Origin`` (spelt as in the allowlist) when it is listed,
  and ``Origin`` is added to ``Vary``. Any other ACAO value, or an unlisted or
  absent ``Origin``: unchanged.

Status and body actions:

- ``map_status: {to: N, when_empty: bool}``: the status becomes ``N`` and the
  reason phrase follows it; with ``when_empty`` only when the body is empty (it
  then needs the body). The framing fields follow the final status once all rules
  ran (``core/rewrite.py``): none on 204/304, ``Content-Length: 0`` when the
  upstream's status had no content, else the upstream's own.
- ``location_from_body: {field, template}``: a 201/202 without ``Location`` gets
  one from the template, the value of the body's top-level JSON member ``field``
  (a non-empty string or an integer) percent-encoded into ``{field}`` (it needs
  the body). Anything else (no JSON object, no such member, a value of another
  type, a result over ``MAX_HEADER_VALUE``): unchanged.

Every ``apply`` returns the new head, the same object when it has nothing to do,
or ``None`` when it needs the body to decide and the body was not held. Values a
rule adds are ASCII and bounded (static ones are checked when the config is
compiled, the Location is percent-encoded and capped).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import quote

from auditproxy.core.httpsyntax import reason_phrase
from auditproxy.core.model import Headers, RequestHead, ResponseHead, header_value

MAX_HEADER_VALUE = 1024  # characters (= bytes, ASCII) of a value a rewrite adds

# ---------------------------------------------------------------- header helpers


def _replace_all(headers: Headers, name: str, value: str) -> Headers:
    """``headers`` with every field ``name`` replaced by one ``name: value`` (at the
    first one's place, else appended); the same tuple when that is already so."""
    lname = name.lower()
    places = [i for i, (k, _) in enumerate(headers) if k.lower() == lname]
    if len(places) == 1 and headers[places[0]][1] == value:
        return headers
    if not places:
        return (*headers, (name, value))
    first = places[0]
    rest = tuple(h for i, h in enumerate(headers) if i > first and h[0].lower() != lname)
    return (*headers[:first], (name, value), *rest)


def without(headers: Headers, lnames: frozenset[str]) -> Headers:
    kept = tuple(h for h in headers if h[0].lower() not in lnames)
    return headers if len(kept) == len(headers) else kept


def _add_vary(headers: Headers, token: str) -> Headers:
    """``token`` listed in ``Vary``: merged into the first Vary field when that is
    plain ASCII and stays bounded, else as a field of its own (RFC 9110 §5.3)."""
    varies = [(i, v) for i, (k, v) in enumerate(headers) if k.lower() == "vary"]
    listed = {t.strip().lower() for _, v in varies for t in v.split(",")}
    if token.lower() in listed or "*" in listed:
        return headers
    if varies:
        i, v = varies[0]
        merged = f"{v.strip()}, {token}" if v.strip() else token
        if merged.isascii() and len(merged) <= MAX_HEADER_VALUE:
            return (*headers[:i], (headers[i][0], merged), *headers[i + 1 :])
    return (*headers, ("Vary", token))


def with_headers(head: ResponseHead, headers: Headers, status: int | None = None) -> ResponseHead:
    if headers is head.headers and status is None:
        return head
    if status is None or status == head.status:
        return ResponseHead(
            status=head.status, reason=head.reason, headers=headers, http_version=head.http_version
        )
    return ResponseHead(
        status=status, reason=reason_phrase(status), headers=headers, http_version=head.http_version
    )


# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class _HeaderFields:
    """An action configured with a mapping of header name -> value."""

    fields: Headers
    needs_body: ClassVar[bool] = False

    def describe(self) -> object:
        return dict(self.fields)


@dataclass(frozen=True, slots=True)
class SetHeader(_HeaderFields):
    action: ClassVar[str] = "set_header"

    def apply(self, head: ResponseHead, request: RequestHead, body: bytes | None) -> ResponseHead:
        headers = head.headers
        for name, value in self.fields:
            headers = _replace_all(headers, name, value)
        return with_headers(head, headers)


@dataclass(frozen=True, slots=True)
class AddHeaderIfMissing(_HeaderFields):
    action: ClassVar[str] = "add_header_if_missing"

    def apply(self, head: ResponseHead, request: RequestHead, body: bytes | None) -> ResponseHead:
        missing = tuple(f for f in self.fields if header_value(head.headers, f[0]) is None)
        return with_headers(head, (*head.headers, *missing)) if missing else head


@dataclass(frozen=True, slots=True)
class RemoveHeader:
    names: tuple[str, ...]
    action: ClassVar[str] = "remove_header"
    needs_body: ClassVar[bool] = False

    def apply(self, head: ResponseHead, request: RequestHead, body: bytes | None) -> ResponseHead:
        return with_headers(head, without(head.headers, frozenset(n.lower() for n in self.names)))

    def describe(self) -> object:
        return list(self.names)


@dataclass(frozen=True, slots=True)
class MapStatus:
    to: int
    when_empty: bool = False
    action: ClassVar[str] = "map_status"

    @property
    def needs_body(self) -> bool:
        return self.when_empty

    def apply(
        self, head: ResponseHead, request: RequestHead, body: bytes | None
    ) -> ResponseHead | None:
        if head.status == self.to:
            return head
        if self.when_empty:
            if body is None:
                return None
            if body:
                return head
        return with_headers(head, head.headers, self.to)

    def describe(self) -> object:
        return {"to": self.to, "when_empty": self.when_empty}


@dataclass(frozen=True, slots=True)
class CorsOrigin:
    allow: tuple[str, ...]  # as configured
    _lowered: Mapping[str, str] = field(init=False, repr=False, compare=False)
    action: ClassVar[str] = "cors_origin"
    needs_body: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lowered", {o.lower(): o for o in self.allow})

    def apply(self, head: ResponseHead, request: RequestHead, body: bytes | None) -> ResponseHead:
        if [v.strip() for v in head.headers_all("access-control-allow-origin")] != ["*"]:
            return head
        origin = self._lowered.get((request.header("origin") or "").strip().lower())
        if origin is None:
            return head
        headers = _replace_all(head.headers, "Access-Control-Allow-Origin", origin)
        return with_headers(head, _add_vary(headers, "Origin"))

    def describe(self) -> object:
        return {"allow": list(self.allow)}


@dataclass(frozen=True, slots=True)
class LocationFromBody:
    field: str
    template: str
    action: ClassVar[str] = "location_from_body"
    needs_body: ClassVar[bool] = True

    def apply(
        self, head: ResponseHead, request: RequestHead, body: bytes | None
    ) -> ResponseHead | None:
        if head.status not in (201, 202) or head.header("location") is not None:
            return head
        if body is None:
            return None
        value = _top_level_field(body, self.field)
        if value is None:
            return head
        location = self.template.replace("{" + self.field + "}", quote(value, safe=""))
        if len(location) > MAX_HEADER_VALUE:
            return head
        return with_headers(head, (*head.headers, ("Location", location)))

    def describe(self) -> object:
        return {"field": self.field, "template": self.template}


def _top_level_field(body: bytes, name: str) -> str | None:
    """The string or integer value of the top-level JSON member ``name``, as text."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    value = doc.get(name) if isinstance(doc, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


Action = SetHeader | AddHeaderIfMissing | RemoveHeader | MapStatus | CorsOrigin | LocationFromBody
