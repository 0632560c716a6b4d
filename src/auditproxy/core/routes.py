"""Bounded route labels for metrics. PLACEHOLDER INTERFACE, real one replaces it."""

from __future__ import annotations

from collections.abc import Sequence


class RouteLabeler:
    """Maps a request path to a bounded label: a configured template, an
    automatic template (ids collapsed to ``{id}``), or ``other`` past the cap."""

    def __init__(self, templates: Sequence[str] = (), *, max_routes: int = 200) -> None:
        self.templates = tuple(templates)
        self.max_routes = max_routes

    def label(self, path: str) -> str:
        return path
