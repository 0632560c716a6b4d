"""The rule engine: audit(exchange, profile) -> findings. Pure, never raises.

A :class:`~auditproxy.core.profile.Profile` holds the guideline tables (the ARP.02
matrix, the handling table) and the rule rows. ``compile_profile`` resolves its
enabled rules to their check functions once, indexed by phase and status, so
``audit`` only looks up one tuple and runs the checks in it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from auditproxy.core.checks import CHECKS, Ctx, Hit
from auditproxy.core.findings import Finding, RetryAdvice, Severity
from auditproxy.core.httpsyntax import reason_phrase
from auditproxy.core.model import Exchange
from auditproxy.core.profile import Advice, HandlingRow, Profile, Rule
from auditproxy.core.retry import IDEMPOTENT_METHODS

__all__ = ["HandlingRow", "Profile", "Rule", "audit", "compile_profile", "retry_advice"]

Phase = Literal["head", "body", "all"]

_IDEMPOTENT = frozenset(IDEMPOTENT_METHODS)
NON_IDEMPOTENT_CONDITION = (
    "retry only if the request is known not to have been processed "
    "(408, 425, 429, or 503 before processing) or with an Idempotency-Key"
)
_LOW, _HIGH = 100, 599  # statuses indexed one by one; the rest share key -1


@dataclass(frozen=True, slots=True)
class _Bound:
    rule: Rule
    call: Callable[[Ctx], Hit]  # the check with the rule's parameters bound


def _bind(rule: Rule) -> _Bound:
    fn = CHECKS[rule.check].fn
    params = dict(rule.params)
    if isinstance(params.get("header"), str):
        # looked up in the lower-cased header index; messages use rule.header
        params["header"] = params["header"].lower()
    return _Bound(rule, partial(fn, **params) if params else fn)


# Methods whose (status, method) check lists are precomputed on first use; any
# other method filters the status's list per exchange (no unbounded cache).
_CACHED_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


class _Table:
    """The bound checks of one phase, by status and (status, method)."""

    __slots__ = ("by_method", "by_status")

    def __init__(self, rules: tuple[Rule, ...], phases: tuple[str, ...]) -> None:
        bound = [_bind(r) for r in rules if r.enabled and r.phase in phases]
        self.by_status: dict[int, tuple[_Bound, ...]] = {}
        for key in (*range(_LOW, _HIGH + 1), -1):
            self.by_status[key] = tuple(
                b for b in bound if b.rule.statuses is None or key in b.rule.statuses
            )
        self.by_method: dict[tuple[int, str], tuple[_Bound, ...]] = {}

    def checks(self, status: int, method: str) -> tuple[_Bound, ...]:
        key = status if _LOW <= status <= _HIGH else -1
        found = self.by_method.get((key, method))
        if found is None:
            found = tuple(
                b for b in self.by_status[key] if b.rule.methods is None or method in b.rule.methods
            )
            if method in _CACHED_METHODS:
                self.by_method[(key, method)] = found
        return found


def compile_profile(profile: Profile) -> Mapping[str, _Table]:
    """The profile's enabled rules bound to their checks, by phase (built once;
    raises KeyError for a rule naming an unknown check)."""
    tables: Mapping[str, _Table] | None = profile.compiled.get("tables")
    if tables is None:
        tables = profile.compiled["tables"] = {
            "head": _Table(profile.rules, ("head",)),
            "body": _Table(profile.rules, ("body",)),
            "all": _Table(profile.rules, ("head", "body")),
        }
    return tables


class _Values(dict[str, Any]):
    """Message template values; unknown placeholders are left as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _finding(b: _Bound, hit: Mapping[str, Any], ctx: Ctx) -> Finding:
    rule = b.rule
    severity = rule.severity
    wanted = hit.get("_severity")
    if wanted is not None:
        # a check may lower the severity for a milder case, never raise it
        lower = Severity(wanted)
        if lower.rank < severity.rank:
            severity = lower
    template = hit.get("_message") or rule.message
    status = ctx.status
    header = hit.get("_header") or rule.header
    values = _Values(status=status, method=ctx.method, reason=reason_phrase(status), header=header)
    values.update(hit)
    return Finding(
        rule=rule.id,
        severity=severity,
        message=template.format_map(values),
        category=rule.category,
        header=header,
    )


def audit(exchange: Exchange, profile: Profile, *, phase: Phase = "all") -> tuple[Finding, ...]:
    """Findings for one exchange. ``head`` runs only checks that need no body,
    ``body`` only those that do, ``all`` both. Never raises: a crashing check
    becomes one ``Severity.ERROR`` finding carrying its rule id."""
    try:
        bound = compile_profile(profile)[phase].checks(
            exchange.response.status, exchange.request.method
        )
        if not bound:
            return ()
        if exchange.origin != "upstream":  # the proxy answered: rare, filtered here
            bound = tuple(
                b for b in bound if b.rule.origins is None or exchange.origin in b.rule.origins
            )
        ctx = Ctx(exchange, profile)
        out: list[Finding] = []
        for b in bound:
            try:
                hit = b.call(ctx)
                if hit is not None:
                    out.append(_finding(b, hit, ctx))
            except Exception as exc:
                out.append(
                    Finding(
                        rule=b.rule.id,
                        severity=Severity.ERROR,
                        message=f"check {b.rule.check} crashed: {type(exc).__name__}: {exc}",
                        category=b.rule.category,
                        header=b.rule.header,
                    )
                )
        return tuple(out)
    except Exception as exc:  # a broken exchange record must not break the request
        return (
            Finding(
                rule="ENGINE",
                severity=Severity.ERROR,
                message=f"audit crashed: {type(exc).__name__}: {exc}",
            ),
        )


def retry_advice(exchange: Exchange, profile: Profile) -> RetryAdvice:
    """The handling-table advice for the exchange's status, adjusted for method
    idempotency and ``Idempotency-Key`` (rule-catalog §6). Never raises."""
    try:
        status = exchange.response.status
        row = profile.handling_row(status)
        if row is None:
            return RetryAdvice(
                advice="never",
                condition=f"status {status} is not in the {profile.name} handling table",
            )
        advice: Advice = row.advice
        condition = row.condition
        retry_after = None
        if advice in ("must", "may"):
            method = exchange.request.method
            if method not in _IDEMPOTENT and (
                exchange.request.header(profile.idempotency_key_header) is None
            ):
                advice = "conditional"
                condition = NON_IDEMPOTENT_CONDITION
        if advice != "never":
            retry_after = exchange.response.header("Retry-After")
        if retry_after is None:
            return RetryAdvice(advice=advice, condition=condition)
        note = f"honour Retry-After: {retry_after.strip()[:64]}"
        condition = f"{condition}; {note}" if condition else note
        return RetryAdvice(advice=advice, condition=condition)
    except Exception as exc:
        return RetryAdvice(advice="never", condition=f"advice failed: {type(exc).__name__}")
