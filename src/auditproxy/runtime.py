"""The serving process's state: the immutable ``Runtime`` derived from one
validated ``Settings``, and the long-lived ``ProxyContext`` shared by the traffic
handler and the admin endpoints.

``Runtime`` is everything derived from settings (profile, route table, timeouts,
limits), precomputed so the hot path does no config look-ups. Reload builds a
new ``Runtime`` and swaps one reference: a request keeps the snapshot it started
with. This module imports neither the handler nor the admin app, so both can
import it.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from yarl import URL

from auditproxy import __version__
from auditproxy.core.errors import ConfigError
from auditproxy.core.profile import Profile
from auditproxy.core.retry import RetryBudget, RetryPolicy, compile_policy
from auditproxy.core.rewrite import RewriteRule, compile_rewrites
from auditproxy.core.routes import RouteLabeler, prefix_matches
from auditproxy.deadlines import Deadlines
from auditproxy.profiles import load_profile
from auditproxy.settings import RetrySettings, RouteSettings, Settings
from auditproxy.sinks import Sink, fan_out
from auditproxy.sinks.log import LogSink
from auditproxy.sinks.metrics import Metrics
from auditproxy.sinks.recorder import Recorder
from auditproxy.wire import Upstream

log = structlog.get_logger("auditproxy")

RECENT_FINDINGS = 1000
MIN_CAPTURE = 64 * 1024
# Keys that only take effect on restart (sockets, process-wide resources).
RESTART_ONLY = ("listen", "admin", "record", "log", "limits")
# The cancel message of a request cut at the end of the shutdown grace, and how
# long its answer and finish step may take after that.
SHUTDOWN_CUT = "auditproxy: shutdown grace over"
CUT_FINISH_SECONDS = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One upstream target, precomputed from a RouteSettings (or ``upstream:``)."""

    prefix: str
    base: str  # scheme://authority[/base-path] without trailing slash
    authority: str  # lower-case host[:port] of the upstream
    preserve_host: bool
    public: bool
    retry: RetryPolicy | None = None  # None: retry off for this route

    def matches(self, path: str) -> bool:
        return prefix_matches(self.prefix, path)


def _route(rs: RouteSettings, retry: RetrySettings, profile: Profile) -> Route:
    url = URL(rs.upstream)
    policy = compile_policy(rs.retry or retry, profile)
    return Route(
        prefix=rs.prefix,
        base=rs.upstream.rstrip("/"),
        authority=_authority(url),
        preserve_host=rs.preserve_host,
        public=rs.public,
        retry=policy if policy.enabled else None,
    )


def _authority(url: URL) -> str:
    host = (url.raw_host or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return host if url.is_default_port() else f"{host}:{url.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Runtime:
    settings: Settings
    profile: Profile
    routes: tuple[Route, ...]
    labeler: RouteLabeler
    capture_cap: int
    own_authorities: frozenset[str]
    rewrites: tuple[RewriteRule, ...] = ()
    rewrites_read_findings: bool = False  # a rule matches on a finding

    def route_for(self, path: str) -> Route | None:
        for r in self.routes:
            if r.matches(path):
                return r
        return None


def _own_authorities(settings: Settings, routes: tuple[Route, ...]) -> frozenset[str]:
    """Authorities an absolute-form target may name: the proxy's own addresses and
    the configured upstreams. Anything else is a foreign host (no open proxy)."""
    port = settings.listen.port
    hosts = {settings.listen.host, "localhost", "127.0.0.1", "[::1]", socket.gethostname()}
    names = {h.lower() for h in hosts}
    out = {f"{h}:{port}" for h in names}
    if port == 80:
        out |= names
    out |= {r.authority for r in routes}
    return frozenset(out)


def build_runtime(settings: Settings) -> Runtime:
    """Everything derived from settings; raises ConfigError (e.g. from the profile)."""
    source = settings.config_file or "<config>"
    profile = load_profile(settings.profile, settings.rules, source=source)
    routes = tuple(_route(r, settings.retry, profile) for r in settings.routes)
    if settings.upstream:
        fallback = RouteSettings(prefix="/", upstream=settings.upstream)
        routes += (_route(fallback, settings.retry, profile),)
    templates = [t for r in settings.routes for t in r.templates]
    rewrites = compile_rewrites(settings.rewrite, profile, source=source)
    return Runtime(
        settings=settings,
        profile=profile,
        routes=routes,
        labeler=RouteLabeler(templates, max_routes=settings.max_routes),
        capture_cap=max(settings.record.max_body, MIN_CAPTURE),
        own_authorities=_own_authorities(settings, routes),
        rewrites=rewrites,
        rewrites_read_findings=any(r.match.finding for r in rewrites),
    )


def _load_report(profile: Profile) -> Any | None:
    """The compliance report (core/report.py) when it is available."""
    try:
        module = importlib.import_module("auditproxy.core.report")
    except ImportError:
        return None
    return module.Report(profile)


class ProxyContext:
    """Shared, long-lived state of one serving process."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        registry: CollectorRegistry | None = None,
        loader: Callable[[], Settings] | None = None,
    ) -> None:
        self.runtime = runtime
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.log_sink = LogSink()
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_FINDINGS)
        self.report = _load_report(runtime.profile)
        self.recorder: Recorder | None = None
        self.upstream: Upstream | None = None  # set while the traffic server runs
        self.deadlines = Deadlines()  # upstream timeouts of every request in flight
        self.loader = loader
        self.sink_errors = 0
        self.sinks: tuple[Sink, ...] = ()
        self.flights: set[asyncio.Task[None]] = set()  # the handlers in flight
        self.draining = False  # set when the stop begins: /readyz answers 503
        self._budgets: dict[str, tuple[RetryPolicy, RetryBudget]] = {}
        self._wire_sinks()
        self._set_build_info()

    def retry_budget(self, route: Route, policy: RetryPolicy) -> RetryBudget:
        """The process's retry budget for the route's policy (a new one when a
        reload changed the policy)."""
        held = self._budgets.get(route.prefix)
        if held is None or held[0] != policy:
            held = self._budgets[route.prefix] = (policy, RetryBudget.for_policy(policy))
        return held[1]

    async def drain(self, grace: float) -> int:
        """Let the requests in flight finish within ``grace`` seconds, then cut
        the rest (each is answered 503 or aborted, and finished as cut) and wait
        for their finish steps. Returns how many were cut."""
        self.draining = True
        pending = set(self.flights)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel(SHUTDOWN_CUT)
        if pending:
            await asyncio.wait(pending, timeout=CUT_FINISH_SECONDS)
            log.warning("requests_cut_at_shutdown", count=len(pending), grace_seconds=grace)
        return len(pending)

    def attach_recorder(self, recorder: Recorder | None) -> None:
        self.recorder = recorder
        self._wire_sinks()

    def _wire_sinks(self) -> None:
        self.sinks = fan_out(
            metrics=self.metrics,
            log_sink=self.log_sink,
            recent=self.recent,
            report=self.report,
            recorder=self.recorder,
        )

    def _set_build_info(self) -> None:
        p = self.runtime.profile
        self.metrics.build_info.clear()
        self.metrics.build_info.labels(__version__, p.name, p.version).set(1)

    def reload(self) -> str | None:
        """Re-read the configuration and swap the runtime; None on success, else
        the one-line error (the old configuration stays active)."""
        if self.loader is None:
            return "no configuration source to reload from"
        try:
            new = build_runtime(self.loader())
        except ConfigError as exc:
            log.error("config_reload_failed", error=str(exc))
            return str(exc)
        old = self.runtime.settings
        self.runtime = new
        self._set_build_info()
        changed = [k for k in RESTART_ONLY if getattr(old, k) != getattr(new.settings, k)]
        log.info("config_reloaded", file=new.settings.config_file, restart_needed_for=changed)
        return None
