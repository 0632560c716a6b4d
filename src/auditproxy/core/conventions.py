"""Per-API state that one exchange cannot show: the naming convention of field names
across an API (DIGG AME.05) and whether its api-info resource was seen (DIGG VER.06).

``ApiTally`` is fed every audited exchange, the same way as the report (the report
holds one and feeds it), and is bounded: at most ``max_apis`` API roots, at most
``max_names`` distinct field names kept per convention and API. An API is the
root of a route (``core.routes.api_root``: ``/v1/orders/{id}`` belongs to ``/v1``).
The field names come from the walk the engine already made of the exchange's
body (``checkctx.shared_walk``), so the tally parses nothing itself on the live path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from auditproxy.core.checkctx import shared_walk
from auditproxy.core.model import Exchange
from auditproxy.core.profile import Profile
from auditproxy.core.routes import OTHER, api_root, auto_template, is_api_info

NAMING_RULE = "AME.05.NAMING-CONSISTENT"
API_INFO_RULE = "VER.06.API-INFO"
_CONVENTIONS = {"camel": "camelCase", "snake": "snake_case"}
_MAX_ROUTES = 4096  # route -> root memo entries


@dataclass(slots=True)
class _Convention:
    names: set[str] = field(default_factory=set)  # distinct field names, bounded
    more: int = 0  # distinct names past the bound (approximate: not deduplicated)
    example: tuple[str, str] | None = None  # (field, route) where first seen

    @property
    def count(self) -> int:
        return len(self.names) + self.more


@dataclass(slots=True)
class _Api:
    exchanges: int = 0
    api_info_status: int | None = None  # a 2xx answer to GET <root>/api-info, else the last
    styles: dict[str, _Convention] = field(
        default_factory=lambda: {k: _Convention() for k in _CONVENTIONS}
    )


class ApiTally:
    """Per API root: exchanges, api-info seen or not, camelCase vs snake_case field names."""

    def __init__(
        self, profile: Profile | None = None, *, max_apis: int = 64, max_names: int = 512
    ) -> None:
        self.max_apis = max_apis
        self.max_names = max_names
        self._profile = profile
        naming = profile.rule(NAMING_RULE) if profile is not None else None
        self._naming = naming is not None and naming.enabled
        params = naming.params if naming is not None else {}
        self._reserved: frozenset[str] = frozenset(params.get("reserved", ()))
        self._max_bytes: int = int(params.get("max_bytes", 16384))
        info = profile.rule(API_INFO_RULE) if profile is not None else None
        self._api_info = info is not None and info.enabled
        self._resource: str = str(info.params.get("resource", "api-info")) if info else "api-info"
        self._apis: dict[str, _Api] = {}
        self._roots: dict[str, str] = {}  # route label -> API root (route labels are bounded)

    def add(self, exchange: Exchange) -> None:
        """Count one audited exchange."""
        route = exchange.route
        if not route or route == OTHER:
            route = auto_template(exchange.request.path)
        api = self._api(route)
        api.exchanges += 1
        if (
            self._api_info
            and exchange.request.method == "GET"
            and is_api_info(route, self._resource)
        ):
            api.api_info_status = exchange.response.status
        if self._naming and self._profile is not None and exchange.response_body.size:
            walked = shared_walk(exchange, self._profile, self._max_bytes)
            if walked is not None:
                self._tally(api, walked.by_style(), route)

    def _api(self, route: str) -> _Api:
        root = self._roots.get(route)
        if root is None:
            root = api_root(route)
            if root not in self._apis and len(self._apis) >= self.max_apis:
                root = OTHER
            if len(self._roots) < _MAX_ROUTES:
                self._roots[route] = root
        api = self._apis.get(root)
        if api is None:
            api = self._apis[root] = _Api()
        return api

    def _tally(self, api: _Api, by_style: Mapping[str, list[str]], route: str) -> None:
        for style, conv in api.styles.items():
            for key in by_style.get(style, ()):
                if key in self._reserved or key in conv.names:
                    continue
                if len(conv.names) < self.max_names:
                    conv.names.add(key)
                else:
                    conv.more += 1
                if conv.example is None:
                    conv.example = (key, route)

    def state(self) -> dict[str, Any]:
        """The tally as JSON-ready data; ``merge`` adds it to another tally."""
        return {
            root: {
                "exchanges": api.exchanges,
                "api_info_status": api.api_info_status,
                "styles": {
                    style: [sorted(c.names), c.more, list(c.example) if c.example else None]
                    for style, c in api.styles.items()
                },
            }
            for root, api in self._apis.items()
        }

    def merge(self, state: dict[str, Any]) -> None:
        """Add another tally's ``state()`` (kept within this tally's bounds)."""
        for root, row in state.items():
            if root not in self._apis and len(self._apis) >= self.max_apis:
                root = OTHER
            api = self._apis.get(root)
            if api is None:
                api = self._apis[root] = _Api()
            api.exchanges += int(row["exchanges"])
            if row["api_info_status"] is not None:
                api.api_info_status = _better(api.api_info_status, int(row["api_info_status"]))
            for style, (names, more, example) in row["styles"].items():
                conv = api.styles.get(style)
                if conv is None:
                    continue
                for name in names:
                    if name in conv.names:
                        continue
                    if len(conv.names) < self.max_names:
                        conv.names.add(name)
                    else:
                        conv.more += 1
                conv.more += int(more)
                if conv.example is None and example:
                    conv.example = (str(example[0]), str(example[1]))

    def as_dict(self) -> dict[str, Any]:
        """Per API root: exchanges, ``api_info`` (``seen``, ``answered <status>`` or
        ``never seen``, when VER.06 is on) and ``naming`` (counts per convention and
        the minority with an example, when AME.05 is on)."""
        out: dict[str, Any] = {}
        for root, api in sorted(self._apis.items()):
            row: dict[str, Any] = {"exchanges": api.exchanges}
            if self._api_info and root != OTHER:
                row["api_info"] = _api_info(api.api_info_status)
            if self._naming:
                row["naming"] = _naming(api)
            out[root] = row
        return out


def _better(old: int | None, new: int) -> int:
    """A 2xx answer stays (the resource is there); otherwise the newer answer."""
    return old if old is not None and 200 <= old <= 299 else new


def _api_info(status: int | None) -> str:
    if status is None:
        return "never seen"
    return "seen" if 200 <= status <= 299 else f"answered {status}"


def _naming(api: _Api) -> dict[str, Any]:
    camel, snake = api.styles["camel"], api.styles["snake"]
    out: dict[str, Any] = {"camelCase": camel.count, "snake_case": snake.count}
    if camel.count and snake.count:
        major, minor = ("camel", "snake") if camel.count >= snake.count else ("snake", "camel")
        m = api.styles[minor]
        example = m.example or ("", "")
        out["convention"] = _CONVENTIONS[major]
        out["minority"] = {
            "convention": _CONVENTIONS[minor],
            "fields": m.count,
            "example": example[0],
            "route": example[1],
        }
    elif camel.count or snake.count:
        out["convention"] = _CONVENTIONS["camel" if camel.count else "snake"]
    return out


def api_rows(apis: dict[str, Any]) -> list[list[str]]:
    """The per-API table of the rendered report: API, exchanges, api-info, naming."""
    rows = []
    for root, api in apis.items():
        naming = api.get("naming") or {}
        minority = naming.get("minority")
        if minority:
            text = (
                f"{naming['convention']}, but {minority['fields']} {minority['convention']} "
                f"(e.g. {minority['example']} on {minority['route']}) (AME.05)"
            )
        else:
            text = naming.get("convention", "-")
        info = api.get("api_info", "-")
        if info not in ("-", "seen"):
            info += " (VER.06)"
        rows.append([root, str(api["exchanges"]), info, text])
    return rows
