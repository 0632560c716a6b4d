"""The records of a loaded guideline profile: the handling table's rows, the rule
rows and the profile that holds them with the ARP.02 matrix. Data only: the
engine (``core/engine.py``) compiles a profile's rules to check functions, and
``auditproxy.profiles`` reads profiles from YAML."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from auditproxy.core.findings import Category, Severity

Advice = Literal["never", "must", "may", "conditional"]
# When the proxy may retry a ``conditional`` row on a client's behalf (SPEC §10);
# a conditional row without one is never retried by the proxy. Evaluated in
# core/retry.py: a parseable Retry-After (its cap then applies), the whole request
# body held (so a retry can send Content-Length), the route listed in
# ``retry.statuses.retry_404_routes``.
RetryWhen = Literal["retry_after_within_cap", "body_held", "route_listed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlingRow:
    """One row of the handling/retry table (a status code or a class such as 2xx)."""

    status: str  # "404" or "2xx"
    klass: str
    text_sv: str
    text_en: str
    advice: Advice
    condition: str | None = None
    retry_when: RetryWhen | None = None  # conditional rows only
    unused: bool = False
    origin: str = "seed"  # seed | reconstructed | later-revision | proposed


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One catalog row: which check, with which parameters, at what severity."""

    id: str
    check: str
    severity: Severity
    message: str
    source: str = ""
    enabled: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)
    category: Category = "other"
    header: str | None = None
    phase: Literal["head", "body"] = "head"
    statuses: frozenset[int] | None = None  # None: every status
    methods: frozenset[str] | None = None  # None: every method
    origins: frozenset[str] | None = None  # who answered: upstream, proxy; None: both
    profile_version: str = ""
    description: str = ""
    examples: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Profile:
    """A loaded guideline profile (see auditproxy.profiles for loading YAML).

    Compared and hashed by identity, so it can key caches."""

    name: str
    version: str
    matrix: Mapping[int, frozenset[str]] = field(default_factory=dict)
    matrix_methods: tuple[str, ...] = ("POST", "GET", "PUT", "DELETE", "PATCH")
    handling: Mapping[int, HandlingRow] = field(default_factory=dict)
    handling_classes: Mapping[int, HandlingRow] = field(default_factory=dict)  # 1 -> "1xx"
    rules: tuple[Rule, ...] = ()
    idempotency_key_header: str = "Idempotency-Key"
    source: str = ""
    # Filled once by the engine with the rules compiled to check functions.
    compiled: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def rule(self, rule_id: str) -> Rule | None:
        for r in self.rules:
            if r.id == rule_id:
                return r
        return None

    def handling_row(self, status: int) -> HandlingRow | None:
        """The row for ``status``, else its class row (1xx, 2xx), else ``None``."""
        row = self.handling.get(status)
        if row is None:
            row = self.handling_classes.get(status // 100)
        return row


def same_guidelines(a: Profile, b: Profile) -> bool:
    """True when two loaded profiles judge alike: the same name, version, matrix,
    handling table and rules (with their overrides). ``Profile`` itself compares by
    identity; a reload that re-reads an unchanged profile gives a new, equal one."""
    return a is b or all(
        getattr(a, f.name) == getattr(b, f.name) for f in fields(Profile) if f.compare
    )
