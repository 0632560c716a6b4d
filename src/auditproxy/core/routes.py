"""Bounded route and method labels for metrics (SPEC §6).

A path becomes the first configured template that matches it
(``/orders/{id}``; templates without placeholders are tried first), else an
automatic template with id-like segments
(numeric, UUID, hex of 8+ characters, opaque tokens of 20+ mixed characters)
collapsed to ``{id}``. Dot-segments (``/a/../b``, also percent-encoded) are
removed first, so ``/../../etc/passwd`` is labelled ``/etc/passwd``.

At most ``max_routes`` distinct automatic labels are handed out per labeler;
later new ones become ``other``. Only an exchange that shows the path exists may
take a new one (``allocate``): a path no configured template covers that the
upstream answered 404, or that the proxy refused, gets an existing label or
``other``, so a scanner's thousand probes cannot use up the budget. Results are
cached in a bounded LRU, so a repeated path costs one dict look-up.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import unquote

OTHER = "other"
STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_MAX_LABEL = 200  # characters; longer automatic templates are cut and marked

_NUMERIC = re.compile(r"[0-9]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-fA-F]{8,}")
_OPAQUE = re.compile(r"[A-Za-z0-9_\-.~%=+:]{20,}")
_HAS_DIGIT = re.compile(r"[0-9]")
_HAS_ALPHA = re.compile(r"[A-Za-z]")


def method_label(method: str) -> str:
    """The method as a metric label: a standard method as is, anything else ``OTHER``."""
    return method if method in STANDARD_METHODS else "OTHER"


def is_id_segment(segment: str) -> bool:
    """True for a path segment that looks like an identifier rather than a name."""
    if _NUMERIC.fullmatch(segment) or _UUID.fullmatch(segment):
        return True
    if _HEX.fullmatch(segment) and _HAS_DIGIT.search(segment):
        return True  # 8+ hex digits; plain words like 'deadbeef'-free names stay
    return bool(
        _OPAQUE.fullmatch(segment) and _HAS_DIGIT.search(segment) and _HAS_ALPHA.search(segment)
    )


def auto_template(path: str) -> str:
    """``/orders/42/lines/7`` -> ``/orders/{id}/lines/{id}``."""
    if not path:
        return "/"
    parts = ["{id}" if is_id_segment(seg) else seg for seg in path.split("/")]
    label = "/".join(parts)
    if len(label) > _MAX_LABEL:
        label = label[: _MAX_LABEL - 3] + "..."
    return label


_DOT = re.compile("%2e", re.IGNORECASE)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 on a path, with percent-encoded dots decoded first:
    ``/a/./b/../c`` -> ``/a/c``; never climbs above the root."""
    if "." not in path and "%" not in path:
        return path
    segments = _DOT.sub(".", path).split("/")
    out: list[str] = []
    for seg in segments[1:] if path.startswith("/") else segments:
        if seg == "..":
            if out:
                out.pop()
        elif seg != ".":
            out.append(seg)
    if segments[-1] in (".", ".."):
        out.append("")  # /a/b/.. -> /a/
    return "/" + "/".join(out)


def prefix_matches(prefix: str, path: str) -> bool:
    """True when ``path`` is ``prefix`` or lies under it segment-wise, as ``routes:``
    prefixes match: ``/orders`` matches ``/orders`` and ``/orders/1``, not ``/ordersx``."""
    return prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def routing_path(target: str) -> str:
    """The path a ``routes:`` prefix is matched against: the target's path without
    the query, percent-decoded, as the live proxy routes a request
    (``/orders%2F1?x`` -> ``/orders/1``)."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    return unquote(path) if "%" in path else path


def template_pattern(template: str) -> re.Pattern[str]:
    """The pattern a path must fully match to belong to ``template`` (``{x}``: one
    segment; a trailing slash is allowed)."""
    out = []
    for piece in re.split(r"(\{[^/{}]*\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            out.append("[^/]+")
        else:
            out.append(re.escape(piece))
    return re.compile("".join(out) + "/?")


class RouteLabeler:
    """Maps a request path to a bounded label: a configured template, an
    automatic template (ids collapsed to ``{id}``), or ``other`` past the cap."""

    def __init__(
        self, templates: Sequence[str] = (), *, max_routes: int = 200, cache_size: int = 4096
    ) -> None:
        self.templates = tuple(templates)
        self.max_routes = max_routes
        # literal templates before ones with placeholders, else in the order given, so
        # /orders/exports wins over /orders/{id} whatever the config order
        ordered = sorted(self.templates, key=lambda t: t.count("{"))
        self._patterns = tuple((t, template_pattern(t)) for t in ordered)
        self._labels: set[str] = set()
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size

    method_label = staticmethod(method_label)

    def label(self, path: str, *, allocate: bool = True) -> str:
        """The label for a request path or target (the query string is ignored).
        With ``allocate=False`` no new automatic label is handed out."""
        cache = self._cache
        hit = cache.get(path)
        if hit is not None:
            cache.move_to_end(path)
            return hit
        result = self._resolve(path, allocate)
        if result is OTHER and not allocate:
            return result  # a later exchange that shows the path exists may allocate
        cache[path] = result
        if len(cache) > self._cache_size:
            cache.popitem(last=False)
        return result

    def _resolve(self, target: str, allocate: bool) -> str:
        path = remove_dot_segments(target.split("?", 1)[0].split("#", 1)[0])
        for template, pattern in self._patterns:
            if pattern.fullmatch(path):
                return template
        label = auto_template(path)
        if label in self._labels:
            return label
        if not allocate or len(self._labels) >= self.max_routes:
            return OTHER
        self._labels.add(label)
        return label

    @property
    def distinct(self) -> int:
        """How many automatic labels have been handed out."""
        return len(self._labels)


VERSION_SEGMENT = re.compile(r"v[0-9]+")


@lru_cache(maxsize=4096)  # route labels are bounded
def api_root(route: str) -> str:
    """The root of the API a route belongs to: its path up to and including the
    first major-version segment (``/v1/orders/{id}`` -> ``/v1``), else its first
    segment (``/orders/{id}`` -> ``/orders``)."""
    segments = route.strip("/").split("/")
    for i, seg in enumerate(segments):
        if VERSION_SEGMENT.fullmatch(seg):
            return "/" + "/".join(segments[: i + 1])
    return "/" + segments[0]


@lru_cache(maxsize=4096)
def is_api_info(route: str, resource: str = "api-info") -> bool:
    """True when ``route`` is its API's api-info resource, ``<api root>/api-info``
    (DIGG VER.06); ``/api-info`` for an API served at the root."""
    route = route.rstrip("/")
    return route == "/" + resource or route == api_root(route).rstrip("/") + "/" + resource
