"""The admin application (SPEC §8), on its own port, never on the traffic port.

``/metrics`` (prometheus-client's aiohttp exposition for the injected registry),
``/healthz``, ``/readyz`` (config loaded, upstreams reachable - a cached TCP connect -
recorder writable), ``/-/rules``, ``/-/findings?limit=N``, ``/-/report`` (JSON; the
HTML page when the client's Accept prefers ``text/html``, as a browser's does; plain
text for ``text/plain``), ``POST /-/reload``.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler
from yarl import URL

from auditproxy import report_share
from auditproxy.core.report import render_text
from auditproxy.html_report import csp, render_html

if TYPE_CHECKING:
    from auditproxy.runtime import ProxyContext

READY_CACHE_SECONDS = 3.0
CONNECT_PROBE_TIMEOUT = 0.5
REPORT_TYPES = ("application/json", "text/html", "text/plain")  # on a tie, the first


def preferred_type(accept: str, offers: Sequence[str]) -> str:
    """The offer the Accept header ranks highest (RFC 9110 §12.5.1: the most specific
    matching range gives an offer its q); the first offer when none is acceptable."""
    ranges = []
    for item in accept.split(","):
        mtype, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((mtype.lower(), q))

    def quality(offer: str) -> tuple[int, float]:
        kind = offer.split("/", 1)[0] + "/*"
        matches = [(3 if r == offer else 2 if r == kind else 1, q)
                   for r, q in ranges if r in (offer, kind, "*/*")]  # fmt: skip
        return max(matches, default=(0, 0.0))

    best = max(offers, key=lambda o: (quality(o)[1], -offers.index(o)))
    return best if quality(best)[1] > 0 else offers[0]


class UpstreamProbe:
    """Cached "can we open a TCP connection to every upstream" check."""

    def __init__(self) -> None:
        self._checked_at = -1e9
        self._key: tuple[str, ...] = ()
        self._problems: list[str] = []
        self._lock = asyncio.Lock()

    async def problems(self, bases: tuple[str, ...]) -> list[str]:
        async with self._lock:
            now = time.monotonic()
            if bases != self._key or now - self._checked_at > READY_CACHE_SECONDS:
                self._problems = [p for p in await asyncio.gather(*map(_probe, bases)) if p]
                self._key = bases
                self._checked_at = time.monotonic()
            return list(self._problems)


async def _probe(base: str) -> str | None:
    url = URL(base)
    host, port = url.host or "", url.port or 80
    try:
        async with asyncio.timeout(CONNECT_PROBE_TIMEOUT):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        return (
            f"upstream {base} unreachable: {exc.strerror or type(exc).__name__}"
            if isinstance(exc, OSError)
            else f"upstream {base} unreachable: connect timed out"
        )
    writer.close()
    return None


def _rfc3339(at: float) -> str:
    """Epoch seconds as RFC 3339 UTC text with milliseconds."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _with_rfc3339_time(item: dict[str, Any]) -> dict[str, Any]:
    """A remembered finding with its epoch ``time`` as RFC 3339 UTC text."""
    at = item.get("time")
    if not isinstance(at, int | float):
        return item
    return {**item, "time": _rfc3339(at)}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def setup_admin_routes(app: web.Application, ctx: ProxyContext) -> None:
    probe = UpstreamProbe()
    shared = report_share.shared_dir()
    if shared is not None:
        app.cleanup_ctx.append(report_share.publisher(lambda: ctx.report, shared))

    async def healthz(request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        rt = ctx.runtime
        if ctx.draining:
            return _json({"status": "not ready", "reasons": ["shutting down"]}, status=503)
        reasons = await probe.problems(tuple(sorted({r.base for r in rt.routes})))
        recorder = ctx.recorder
        if recorder is None and rt.settings.record.enabled:
            reasons.append(f"recorder not running for {rt.settings.record.dir}")
        elif recorder is not None and recorder.fault is not None:
            reasons.append(f"recorder cannot write to {recorder.dir}: {recorder.fault}")
        if reasons:
            return _json({"status": "not ready", "reasons": reasons}, status=503)
        return _json({"status": "ready", "profile": rt.profile.name})

    async def rules(request: web.Request) -> web.Response:
        try:
            catalog = importlib.import_module("auditproxy.core.catalog")
        except ImportError:
            return _json({"rules": [], "note": "rule catalog not available"})
        return _json({"rules": catalog.rules_as_dicts(ctx.runtime.profile)})

    async def findings(request: web.Request) -> web.Response:
        raw = request.query.get("limit", "100")
        if not raw.isdigit():
            return _json({"error": f"limit: got {raw!r}, expected a non-negative integer"}, 400)
        limit = int(raw)
        items = list(ctx.recent)[-limit:] if limit else []
        items.reverse()
        return _json({"findings": [_with_rfc3339_time(i) for i in items]})

    async def report(request: web.Request) -> web.Response:
        current = ctx.report  # one report for this answer, even if a reload swaps it
        # With --workers: every worker's exchanges.
        summary = current.as_dict() if shared is None else report_share.merged(current, shared)
        summary["since"] = _rfc3339(ctx.report_since)
        kind = preferred_type(request.headers.get("Accept", ""), REPORT_TYPES)
        vary = {"Vary": "Accept"}
        if kind == "text/html":
            page = render_html(summary, current.profile or ctx.runtime.profile,
                               origin=f"live traffic since {ctx.report_began} "
                                      f"({summary['since']})",
                               generated=time.time())  # fmt: skip
            return web.Response(text=page, content_type="text/html",
                                headers={**vary, "Content-Security-Policy": csp()})  # fmt: skip
        if kind == "text/plain":
            return web.Response(text=render_text(summary), content_type="text/plain", headers=vary)
        return web.json_response(summary, headers=vary)

    async def reload(request: web.Request) -> web.Response:
        error = await ctx.reload()
        if error:
            return _json({"status": "failed", "error": error}, status=400)
        return _json({"status": "reloaded", "profile": ctx.runtime.profile.name})

    app.router.add_get("/metrics", make_aiohttp_handler(ctx.registry))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/-/rules", rules)
    app.router.add_get("/-/findings", findings)
    app.router.add_get("/-/report", report)
    app.router.add_post("/-/reload", reload)
