"""Redaction applied before anything is written: headers, JSON body fields, query parameters.

Pure functions over plain values. The invariant: a value under a configured name is
never returned in clear. When a body cannot be parsed well enough to find those names
(truncated or malformed JSON that mentions one of them), the body text is dropped
rather than risk a leak, and the caller records that it did so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from auditproxy.core.model import Headers

REDACTED = "REDACTED"

DEFAULT_HEADERS = ("authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key")
DEFAULT_JSON_FIELDS = (
    "password",
    "token",
    "access_token",
    "refresh_token",
    "client_secret",
    "secret",
    "api_key",
)
DEFAULT_QUERY_PARAMS = (
    "access_token",
    "api_key",
    "apikey",
    "key",
    "token",
    "client_secret",
    "password",
)
# Header values that carry a URL whose query string may hold credentials.
_URL_HEADERS = frozenset({"location", "content-location", "referer"})


def _lower(names: Iterable[str]) -> frozenset[str]:
    return frozenset(n.strip().lower() for n in names if n.strip())


@dataclass(frozen=True, slots=True, kw_only=True)
class Redaction:
    """Which names are secret. Names compare case-insensitively; the configured lists
    extend the built-in ones (a configuration can add secrets, never un-redact one)."""

    headers: frozenset[str] = frozenset(DEFAULT_HEADERS)
    json_fields: frozenset[str] = frozenset(DEFAULT_JSON_FIELDS)
    query_params: frozenset[str] = frozenset(DEFAULT_QUERY_PARAMS)
    # The JSON field names that contain no other one: a text mentions some field
    # name exactly when it mentions one of these (fewer substring searches).
    _needles: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = self.json_fields
        needles = sorted(n for n in names if not any(m != n and m in n for m in names))
        object.__setattr__(self, "_needles", tuple(needles))

    @classmethod
    def build(
        cls,
        *,
        headers: Iterable[str] = (),
        json_fields: Iterable[str] = (),
        query_params: Iterable[str] = (),
    ) -> Redaction:
        return cls(
            headers=_lower((*DEFAULT_HEADERS, *headers)),
            json_fields=_lower((*DEFAULT_JSON_FIELDS, *json_fields)),
            query_params=_lower((*DEFAULT_QUERY_PARAMS, *query_params)),
        )

    # -- headers -------------------------------------------------------------------
    def header(self, name: str, value: str) -> str:
        lname = name.lower()
        if lname in self.headers:
            return REDACTED
        if lname in _URL_HEADERS and "?" in value:
            return self.url(value)
        return value

    def header_list(self, headers: Headers) -> Headers:
        return tuple((k, self.header(k, v)) for k, v in headers)

    # -- query strings ---------------------------------------------------------------
    def query(self, query: str, extra: frozenset[str] = frozenset()) -> str:
        """The query string with secret parameters' values replaced; the rest byte-exact."""
        if not query:
            return query
        names = self.query_params | extra
        parts = []
        for part in query.split("&"):
            key = part.partition("=")[0]
            if unquote_plus(key).strip().lower() in names:
                parts.append(f"{key}={REDACTED}")
            else:
                parts.append(part)
        return "&".join(parts)

    def url(self, url: str) -> str:
        """``url`` with secret query parameters redacted (a fragment is kept as is)."""
        base, sep, rest = url.partition("?")
        if not sep:
            return url
        query, hsep, fragment = rest.partition("#")
        return f"{base}?{self.query(query)}{hsep}{fragment}"

    # -- bodies ----------------------------------------------------------------------
    def json_value(self, value: Any) -> Any:
        """A copy of a parsed JSON value with secret members replaced at any depth."""
        if isinstance(value, dict):
            return {
                k: (REDACTED if k.lower() in self.json_fields else self.json_value(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.json_value(v) for v in value]
        return value

    def mentions_secret(self, text: str) -> bool:
        """True when ``text`` might hold a secret field (a name or a JSON escape in it)."""
        low = text.lower()
        if "\\" in text and "\\u" in low:  # one fast byte search rules most texts out
            return True
        return any(name in low for name in self._needles)

    def body_text(self, text: str, *, mime: str, complete: bool) -> str | None:
        """The body text safe to write, or ``None`` when it must be dropped.

        JSON (by media type, or text that looks like a JSON document) is parsed and
        its secret members replaced; a form body has its secret fields replaced.
        JSON that cannot be parsed (truncated or malformed) is kept only when it
        cannot contain any secret name.
        """
        lmime = mime.lower()
        if "x-www-form-urlencoded" in lmime:
            return self.query(text, self.json_fields)
        looks_json = "json" in lmime or text.lstrip()[:1] in ("{", "[")
        if not looks_json or not self.mentions_secret(text):
            # Without a field name or an escape that could spell one there is
            # nothing to redact: the text is returned as is, unparsed.
            return text
        if complete:
            try:
                parsed = json.loads(text)
            except ValueError:
                pass
            else:
                if not isinstance(parsed, dict | list):
                    return text
                redacted = self.json_value(parsed)
                if redacted == parsed:
                    return text  # nothing secret: keep the exact bytes
                return json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
        return None  # cannot be parsed and mentions a secret name
