"""Offline auditing: a recorded entry through the same engine and profile as live.

``load_context`` reads the profile, rule overrides and routes from a config file
(or the built-in defaults); ``audit_entry`` turns one HAR entry into an ``Audited``
result; ``report_of`` counts results into the same compliance report as live.
Used by ``auditproxy audit`` and ``auditproxy replay --audit``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from auditproxy.core import engine
from auditproxy.core.findings import Finding, RetryAdvice
from auditproxy.core.har import from_har_entry
from auditproxy.core.model import Exchange
from auditproxy.core.profile import Profile
from auditproxy.core.redact import Redaction
from auditproxy.core.report import Report
from auditproxy.core.routes import RouteLabeler, prefix_matches, routing_path
from auditproxy.profiles import load_profile
from auditproxy.settings import load_settings

_NO_UPSTREAM = "http://127.0.0.1:9"


@dataclass(frozen=True, slots=True)
class RouteConf:
    prefix: str
    templates: tuple[str, ...] = ()
    public: bool = False


@dataclass(slots=True)
class AuditContext:
    profile: engine.Profile
    labeler: RouteLabeler
    routes: tuple[RouteConf, ...] = ()
    redaction: Redaction = dataclasses.field(default_factory=Redaction.build)

    def public(self, target: str) -> bool | None:
        """The ``public`` flag of the first route whose prefix covers the target's
        path, matched as the live proxy routes it (segment-wise on the decoded path:
        ``/orders`` covers ``/orders/1``, not ``/ordersx``); None when none covers it."""
        path = routing_path(target)
        for r in self.routes:
            if prefix_matches(r.prefix, path):
                return r.public
        return None


@dataclass(frozen=True, slots=True)
class Audited:
    source: str
    exchange: Exchange
    url: str
    findings: tuple[Finding, ...]
    advice: RetryAdvice

    @property
    def method(self) -> str:
        return self.exchange.request.method

    @property
    def status(self) -> int:
        return self.exchange.response.status

    @property
    def route(self) -> str:
        return self.exchange.route


def load_context(config: str | None = None, profile_ref: str | None = None) -> AuditContext:
    """Profile (``--profile`` wins over the config's ``profile:``), rule overrides and
    routes, read and validated by the same settings loader as ``serve``."""
    # The offline audit sends nothing, so an upstream is not required: a placeholder
    # satisfies the loader when the config names none.
    settings = load_settings(config, flags={"upstream": _NO_UPSTREAM}) if config else None
    ref = profile_ref or (settings.profile if settings else "digg")
    rules = settings.rules if settings else None
    profile = load_profile(ref, rules, source=config or "<flags>")
    routes = tuple(
        RouteConf(r.prefix, tuple(r.templates), r.public)
        for r in (settings.routes if settings else ())
    )
    templates = [t for r in routes for t in r.templates]
    max_routes = settings.max_routes if settings else 200
    labeler = RouteLabeler(templates, max_routes=max_routes)
    redaction = Redaction.build()
    if settings is not None:
        rec = settings.record
        redaction = Redaction.build(headers=rec.redact_headers,
                                    json_fields=rec.redact_json_fields,
                                    query_params=rec.redact_query_params)  # fmt: skip
    return AuditContext(profile=profile, labeler=labeler, routes=routes, redaction=redaction)


def audit_entry(ctx: AuditContext, source: str, entry: Mapping[str, Any]) -> Audited:
    """Re-audit one entry. Raises ValueError when the entry is not a usable HAR entry."""
    ex = from_har_entry(entry)
    changes: dict[str, Any] = {}
    if not ex.route:
        changes["route"] = ctx.labeler.label(routing_path(ex.request.target))
    public = ctx.public(ex.request.target)
    if public is not None:
        changes["public"] = public
    if changes:
        ex = dataclasses.replace(ex, **changes)
    findings = engine.audit(ex, ctx.profile)
    advice = engine.retry_advice(ex, ctx.profile)
    url = entry["request"]["url"]
    return Audited(source=source, exchange=ex, url=str(url), findings=findings, advice=advice)


def report_of(results: Iterable[Audited], profile: Profile | None) -> Report:
    """The compliance report (as live ``/-/report``) of audited exchanges."""
    report = Report(profile)
    for r in results:
        report.add(r.exchange, r.findings, r.advice)
    return report
