"""Offline auditing: a recorded entry through the same engine and profile as live.

``load_context`` reads the profile, rule overrides and routes from a config file
(or the built-in defaults); ``audit_entry`` turns one HAR entry into an ``Audited``
result. Used by ``auditproxy audit`` and ``auditproxy replay --audit``.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from auditproxy.core import engine
from auditproxy.core.errors import ConfigError
from auditproxy.core.findings import Finding, RetryAdvice
from auditproxy.core.har import from_har_entry
from auditproxy.core.model import Exchange
from auditproxy.core.routes import RouteLabeler
from auditproxy.profiles import load_profile


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

    def public(self, path: str) -> bool | None:
        for r in self.routes:
            if path.startswith(r.prefix):
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


def _read_config(path: str) -> Mapping[str, Any]:
    """The config as a mapping: through the settings loader when it exists, else YAML."""
    try:
        settings_mod = importlib.import_module("auditproxy.settings")
    except ImportError:
        settings_mod = None
    loader = getattr(settings_mod, "load_settings", None)
    if loader is not None:
        loader(path)  # validates the whole file; raises ConfigError naming the key
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(path, "-", f"cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, "-", f"not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(path, "-", f"expected a mapping at the top level, got {data!r:.60}")
    return data


def _routes(path: str, raw: Any) -> tuple[RouteConf, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(path, "routes", f"expected a list, got {raw!r:.60}")
    out = []
    for i, r in enumerate(raw):
        if not isinstance(r, Mapping) or not isinstance(r.get("prefix"), str):
            raise ConfigError(path, f"routes[{i}].prefix", f"expected a string, got {r!r:.60}")
        templates = r.get("templates") or []
        if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
            raise ConfigError(path, f"routes[{i}].templates", f"expected a list of strings, "
                              f"got {templates!r:.60}")  # fmt: skip
        out.append(RouteConf(r["prefix"], tuple(templates), bool(r.get("public", False))))
    return tuple(out)


def load_context(config: str | None = None, profile_ref: str | None = None) -> AuditContext:
    """Profile (``--profile`` wins over the config's ``profile:``), rule overrides, routes."""
    data: Mapping[str, Any] = _read_config(config) if config else {}
    source = config or "<flags>"
    ref = profile_ref or data.get("profile") or "digg"
    if not isinstance(ref, str):
        raise ConfigError(source, "profile", f"expected a name or a path, got {ref!r:.60}")
    rules = data.get("rules")
    if rules is not None and not isinstance(rules, Mapping):
        raise ConfigError(source, "rules", f"expected a mapping, got {rules!r:.60}")
    profile = load_profile(ref, rules, source=source)
    routes = _routes(source, data.get("routes"))
    templates = [t for r in routes for t in r.templates]
    return AuditContext(profile=profile, labeler=RouteLabeler(templates), routes=routes)


def audit_entry(ctx: AuditContext, source: str, entry: Mapping[str, Any]) -> Audited:
    """Re-audit one entry. Raises ValueError when the entry is not a usable HAR entry."""
    ex = from_har_entry(entry)
    changes: dict[str, Any] = {}
    if not ex.route:
        changes["route"] = ctx.labeler.label(ex.request.path)
    public = ctx.public(ex.request.path)
    if public is not None:
        changes["public"] = public
    if changes:
        ex = dataclasses.replace(ex, **changes)
    findings = engine.audit(ex, ctx.profile)
    advice = engine.retry_advice(ex, ctx.profile)
    url = entry["request"]["url"]
    return Audited(source=source, exchange=ex, url=str(url), findings=findings, advice=advice)
