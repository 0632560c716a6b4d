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
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from yarl import URL

from auditproxy import __version__
from auditproxy.core.errors import ConfigError
from auditproxy.core.profile import Profile, same_guidelines
from auditproxy.core.report import Report
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
RESTART_ONLY = ("listen", "admin", "record", "log", "limits", "event_loop")
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


def load_runtime(loader: Callable[[], Settings]) -> Runtime:
    """Read the configuration and build its runtime (file I/O: reload runs it in a
    worker thread, off the event loop)."""
    return build_runtime(loader())


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
        self.report = Report(runtime.profile)
        self.report_since = time.time()  # when the report began counting, and why
        self.report_began = "the proxy started"
        self.recorder: Recorder | None = None
        self.upstream: Upstream | None = None  # set while the traffic server runs
        self.deadlines = Deadlines()  # upstream timeouts of every request in flight
        self.loader = loader
        self.sink_errors = 0
        self.sinks: tuple[Sink, ...] = ()
        self.flights: set[asyncio.Task[None]] = set()  # the handlers in flight
        self.draining = False  # set when the stop begins: /readyz answers 503
        self._budgets: dict[str, tuple[RetryPolicy, RetryBudget]] = {}
        self._reload_lock = asyncio.Lock()
        self._reloads: set[asyncio.Task[str | None]] = set()  # scheduled by SIGHUP
        self._wire_sinks()
        self._set_build_info()

    def retry_budget(self, route: Route, policy: RetryPolicy) -> RetryBudget:
        """The process's retry budget for the route's policy (a new one when a
        reload changed the policy)."""
        held = self._budgets.get(route.prefix)
        if held is None or held[0] is not policy:  # a reload compiles a new policy
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

    def reload(self) -> asyncio.Task[str | None]:
        """Schedule a reload: re-read the configuration off the event loop and swap
        the runtime. The SIGHUP handler calls this and returns at once; ``POST
        /-/reload`` awaits the task, whose result is None on success, else the
        one-line error (the old configuration stays active). Reloads run one at a
        time, in the order they were asked for."""
        task = asyncio.get_running_loop().create_task(self._reload(), name="auditproxy-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)
        return task

    async def _reload(self) -> str | None:
        async with self._reload_lock:
            if self.loader is None:
                return "no configuration source to reload from"
            try:
                new = await asyncio.to_thread(load_runtime, self.loader)
            except ConfigError as exc:
                log.error("config_reload_failed", error=str(exc))
                return str(exc)
            except Exception as exc:  # a bug must not leave SIGHUP's task unretrieved
                log.exception("config_reload_failed", error=str(exc))
                return f"reload failed: {type(exc).__name__}: {exc}"
            self._swap(new)
            return None

    def _swap(self, new: Runtime) -> None:
        """Make ``new`` the runtime of every exchange from the next one on, and every
        consumer of the profile follow it: the build info, the recorder's default,
        and the report. The report starts over when the profile judges differently
        (another profile, version or rule override): counts made under different
        rules are not summed. A reload that keeps the profile keeps the counts."""
        old = self.runtime
        self.runtime = new
        self._set_build_info()
        if self.recorder is not None:
            self.recorder.profile = new.profile
        held = self.report.profile
        restarted = held is None or not same_guidelines(held, new.profile)
        if restarted:
            self.report = Report(new.profile)
            self.report_since = time.time()
            self.report_began = f"the profile changed to {new.profile.name} {new.profile.version}"
            self._wire_sinks()
        else:
            self.report.profile = new.profile
        changed = [k for k in RESTART_ONLY if getattr(old.settings, k) != getattr(new.settings, k)]
        log.info("config_reloaded", file=new.settings.config_file, restart_needed_for=changed,
                 profile=new.profile.name, profile_version=new.profile.version,
                 report_restarted=restarted)  # fmt: skip
