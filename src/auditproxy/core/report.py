"""The compliance report: an accumulator of audited exchanges and its renderers.

``Report.add(exchange, findings, advice)`` is cheap and bounded (keys are rule
ids, route labels, method labels and status codes); ``as_dict()`` gives a
JSON-ready summary that ``render_text`` and ``render_markdown`` turn into a
terminal table or a Markdown document. Used by ``auditproxy demo``, the admin
``/-/report`` endpoint and ``auditproxy audit``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from auditproxy.core.findings import Finding, RetryAdvice, Severity
from auditproxy.core.model import Exchange
from auditproxy.core.profile import Profile
from auditproxy.core.routes import method_label

_TOP_RULES = 5


@dataclass(slots=True)
class _RuleStats:
    count: int = 0
    severity: Severity = Severity.ERROR
    example: str = ""


@dataclass(slots=True)
class _RouteStats:
    exchanges: int = 0
    noncompliant: int = 0
    rules: Counter[str] = field(default_factory=Counter)


class Report:
    """Accumulates exchanges; ``as_dict()`` summarises them (SPEC §8 ``/-/report``).

    An exchange without findings (the common case on the hot path) is one counter
    increment keyed by (route, method label, status, advice); those counts are
    folded into the per-route, per-pair and per-advice tables only when the
    summary is asked for. Exchanges with findings are counted in full at once
    (which finding becomes a rule's example depends on their order)."""

    def __init__(self, profile: Profile | None = None) -> None:
        self.profile = profile
        self._exchanges = 0  # exchanges with findings; clean ones are in ``_clean``
        self._compliant = 0
        self._rules: dict[str, _RuleStats] = {}
        self._routes: dict[str, _RouteStats] = {}
        self._pairs: Counter[tuple[str, int]] = Counter()
        self._advice: dict[int, Counter[str]] = {}
        self._clean: Counter[tuple[str, str, int, str | None]] = Counter()

    @property
    def exchanges(self) -> int:
        return self._exchanges + self._clean.total()

    @property
    def compliant(self) -> int:
        return self._compliant + self._clean.total()

    def add(
        self,
        exchange: Exchange,
        findings: tuple[Finding, ...],
        advice: RetryAdvice | None = None,
    ) -> None:
        """Count one audited exchange."""
        if not findings:
            self._clean[
                (
                    exchange.route,
                    method_label(exchange.request.method),
                    exchange.response.status,
                    None if advice is None else advice.advice,
                )
            ] += 1
            return
        self._exchanges += 1
        noncompliant = False
        route = self._route(exchange.route)
        route.exchanges += 1
        for f in findings:
            stats = self._rules.get(f.rule)
            if stats is None:
                stats = self._rules[f.rule] = _RuleStats(severity=f.severity, example=f.message)
            stats.count += 1
            if f.severity.rank > stats.severity.rank:
                stats.severity = f.severity
                stats.example = f.message
            route.rules[f.rule] += 1
            if f.counts:
                noncompliant = True
        if noncompliant:
            route.noncompliant += 1
        else:
            self._compliant += 1
        status = exchange.response.status
        self._pairs[(method_label(exchange.request.method), status)] += 1
        if advice is not None:
            self._advice.setdefault(status, Counter())[advice.advice] += 1

    def _route(self, name: str) -> _RouteStats:
        route = self._routes.get(name)
        if route is None:
            route = self._routes[name] = _RouteStats()
        return route

    def _fold(self) -> None:
        """Move the clean exchanges' counts into the full tables."""
        clean, self._clean = self._clean, Counter()
        for (route, method, status, advice), n in clean.items():
            self._exchanges += n
            self._compliant += n
            self._route(route).exchanges += n
            self._pairs[(method, status)] += n
            if advice is not None:
                self._advice.setdefault(status, Counter())[advice] += n

    def state(self) -> dict[str, Any]:
        """Everything the report has counted, as JSON-ready data (``merge`` takes it
        back): lets processes that each count part of the traffic share one report."""
        self._fold()
        return {
            "exchanges": self._exchanges,
            "compliant": self._compliant,
            "rules": {r: [s.count, s.severity.value, s.example] for r, s in self._rules.items()},
            "routes": {
                name: [r.exchanges, r.noncompliant, dict(r.rules)]
                for name, r in self._routes.items()
            },
            "pairs": [[m, s, n] for (m, s), n in self._pairs.items()],
            "advice": {str(s): dict(c) for s, c in self._advice.items()},
        }

    def merge(self, state: dict[str, Any]) -> None:
        """Add the counts of another report's ``state()`` to this one."""
        self._fold()
        self._exchanges += int(state["exchanges"])
        self._compliant += int(state["compliant"])
        for rid, (count, severity, example) in state["rules"].items():
            sev = Severity(severity)
            stats = self._rules.get(rid)
            if stats is None:
                stats = self._rules[rid] = _RuleStats(severity=sev, example=example)
            elif sev.rank > stats.severity.rank:
                stats.severity, stats.example = sev, example
            stats.count += int(count)
        for name, (exchanges, noncompliant, rules) in state["routes"].items():
            route = self._route(name)
            route.exchanges += int(exchanges)
            route.noncompliant += int(noncompliant)
            route.rules.update(rules)
        for method, status, n in state["pairs"]:
            self._pairs[(method, int(status))] += int(n)
        for status, counts in state["advice"].items():
            self._advice.setdefault(int(status), Counter()).update(counts)

    def _in_matrix(self, method: str, status: int) -> bool | None:
        if self.profile is None:
            return None
        alias = "GET" if method == "HEAD" else method
        return alias in self.profile.matrix.get(status, frozenset())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: totals, per rule, per route, per method x status, advice."""
        self._fold()
        rules = {}
        for rid, stats in sorted(self._rules.items(), key=lambda kv: (-kv[1].count, kv[0])):
            rule = self.profile.rule(rid) if self.profile is not None else None
            rules[rid] = {
                "count": stats.count,
                "severity": stats.severity.value,
                "source": rule.source if rule is not None else "",
                "example": stats.example,
            }
        routes = {
            name: {
                "exchanges": r.exchanges,
                "noncompliant": r.noncompliant,
                "top_rules": [[rid, n] for rid, n in r.rules.most_common(_TOP_RULES)],
            }
            for name, r in sorted(self._routes.items())
        }
        pairs = [
            {"method": m, "status": s, "count": n, "in_matrix": self._in_matrix(m, s)}
            for (m, s), n in sorted(self._pairs.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        ]
        advice = {
            str(status): dict(sorted(c.items())) for status, c in sorted(self._advice.items())
        }
        out: dict[str, Any] = {
            "totals": {
                "exchanges": self._exchanges,
                "compliant": self._compliant,
                "noncompliant": self._exchanges - self._compliant,
            },
            "rules": rules,
            "routes": routes,
            "method_status": pairs,
            "retry_advice": advice,
        }
        if self.profile is not None:
            out["profile"] = {"name": self.profile.name, "version": self.profile.version}
            out["handling"] = {
                str(status): self._handling_text(status) for status in sorted(self._advice)
            }
        return out

    def _handling_text(self, status: int) -> str:
        row = self.profile.handling_row(status) if self.profile is not None else None
        if row is not None:
            return row.text_en
        return f"no row for {status} in the handling table, so no retry is advised"


# --- rendering ------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers).rstrip(), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row).rstrip() for row in rows]
    return lines


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def _matrix_mark(value: Any) -> str:
    if value is True:
        return "yes"
    return "no" if value is False else "?"


def _sections(d: dict[str, Any], width: int) -> list[tuple[str, list[str], list[list[str]]]]:
    def cut(text: str) -> str:
        return text if len(text) <= width else text[: width - 3] + "..."

    rules = [
        [rid, r["severity"], str(r["count"]), cut(r.get("source", "")), cut(r["example"])]
        for rid, r in d.get("rules", {}).items()
    ]
    routes = [
        [
            name,
            str(r["exchanges"]),
            str(r["noncompliant"]),
            ", ".join(f"{rid} ({n})" for rid, n in r["top_rules"]) or "-",
        ]
        for name, r in d.get("routes", {}).items()
    ]
    pairs = [
        [p["method"], str(p["status"]), str(p["count"]), _matrix_mark(p["in_matrix"])]
        for p in d.get("method_status", [])
    ]
    handling = d.get("handling", {})
    advice = [
        [status, ", ".join(f"{a} {n}" for a, n in counts.items()), cut(handling.get(status, ""))]
        for status, counts in d.get("retry_advice", {}).items()
    ]
    return [
        ("Findings per rule", ["rule", "severity", "count", "source", "example"], rules),
        ("Per route", ["route", "exchanges", "non-compliant", "top rules"], routes),
        ("Per method x status", ["method", "status", "count", "in ARP.02 matrix"], pairs),
        ("Retry advice per status", ["status", "advice", "handling"], advice),
    ]


def _headline(d: dict[str, Any]) -> str:
    t = d.get("totals", {})
    n, ok, bad = t.get("exchanges", 0), t.get("compliant", 0), t.get("noncompliant", 0)
    prof = d.get("profile")
    suffix = f" against profile {prof['name']} {prof['version']}" if prof else ""
    return (
        f"{n} exchanges audited{suffix}: {ok} compliant ({_pct(ok, n)}), "
        f"{bad} non-compliant ({_pct(bad, n)})"
    )


def render_text(d: dict[str, Any], *, width: int = 60) -> str:
    """The report as aligned plain-text tables for a terminal."""
    lines = ["Compliance report", "=================", _headline(d)]
    for title, headers, rows in _sections(d, width):
        lines += ["", title, ""]
        lines += _table(headers, rows) if rows else ["(none)"]
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(d: dict[str, Any]) -> str:
    """The report as a Markdown document (GitHub tables)."""
    lines = ["# Compliance report", "", _headline(d)]
    for title, headers, rows in _sections(d, 200):
        lines += ["", f"## {title}", ""]
        if not rows:
            lines.append("(none)")
            continue
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join("---" for _ in headers) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


render_report_text = render_text  # the name `auditproxy demo` imports

__all__ = ["Report", "render_markdown", "render_report_text", "render_text"]
