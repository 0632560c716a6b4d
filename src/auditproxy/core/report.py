"""The compliance report: an accumulator of audited exchanges and its renderers.

``Report.add(exchange, findings, advice)`` is cheap and bounded (keys are rule
ids, route labels, method labels and status codes; start times go into a
bounded ``Timeline``); ``as_dict()`` gives a JSON-ready summary, with the
guideline coverage (``core.coverage``), that ``render_text`` and
``render_markdown`` turn into a terminal table or a Markdown document. Used by
``auditproxy demo``, the admin ``/-/report`` endpoint and ``auditproxy audit``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from auditproxy.core.conventions import ApiTally, api_rows
from auditproxy.core.coverage import MATRIX_LEGEND, coverage, coverage_tables, never_exercised
from auditproxy.core.findings import Finding, RetryAdvice, Severity
from auditproxy.core.model import Exchange
from auditproxy.core.profile import Profile
from auditproxy.core.routes import method_label
from auditproxy.core.timeline import Timeline

_TOP_RULES = 5


@dataclass(slots=True)
class _RuleStats:
    count: int = 0
    severity: Severity = Severity.ERROR
    example: str = ""
    where: tuple[str, str, int, str] = ("", "", 0, "")  # method, path, status, request id


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
        self._pairs_bad: Counter[tuple[str, int]] = Counter()
        self._severities: Counter[str] = Counter()
        self._timeline = Timeline()
        self._advice: dict[int, Counter[str]] = {}
        self._clean: Counter[tuple[str, str, int, str | None]] = Counter()
        # URL findings judge the route template: counted once per (rule, route).
        self._url_seen: set[tuple[str, str]] = set()
        self.apis = ApiTally(profile)  # per-API naming convention and api-info

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
        self.apis.add(exchange)
        if not findings:
            self._timeline.add(exchange.timing.started, False)
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
        where = (exchange.request.method, exchange.request.path, exchange.response.status,
                 exchange.request_id)  # fmt: skip
        for f in findings:
            if f.category == "url" and not self._first_for_route(f.rule, exchange.route):
                noncompliant = noncompliant or f.counts
                continue
            stats = self._rules.get(f.rule)
            if stats is None:
                stats = self._rules[f.rule] = _RuleStats(
                    severity=f.severity, example=f.message, where=where
                )
            stats.count += 1
            self._severities[f.severity.value] += 1
            if f.severity.rank > stats.severity.rank:
                stats.severity = f.severity
                stats.example = f.message
                stats.where = where
            route.rules[f.rule] += 1
            if f.counts:
                noncompliant = True
        if noncompliant:
            route.noncompliant += 1
        else:
            self._compliant += 1
        status = exchange.response.status
        pair = (method_label(exchange.request.method), status)
        self._pairs[pair] += 1
        if noncompliant:
            self._pairs_bad[pair] += 1
        self._timeline.add(exchange.timing.started, noncompliant)
        if advice is not None:
            self._advice.setdefault(status, Counter())[advice.advice] += 1

    def _first_for_route(self, rule: str, route: str) -> bool:
        key = (rule, route)
        if key in self._url_seen:
            return False
        self._url_seen.add(key)
        return True

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
            "rules": {
                r: [s.count, s.severity.value, s.example, list(s.where)]
                for r, s in self._rules.items()
            },
            "routes": {
                name: [r.exchanges, r.noncompliant, dict(r.rules)]
                for name, r in self._routes.items()
            },
            "pairs": [[m, s, n, self._pairs_bad[(m, s)]] for (m, s), n in self._pairs.items()],
            "severities": dict(self._severities),
            "timeline": self._timeline.state(),
            "advice": {str(s): dict(c) for s, c in self._advice.items()},
            "url_seen": sorted([rule, route] for rule, route in self._url_seen),
            "apis": self.apis.state(),
        }

    def merge(self, state: dict[str, Any]) -> None:
        """Add the counts of another report's ``state()`` to this one."""
        self._fold()
        self._exchanges += int(state["exchanges"])
        self._compliant += int(state["compliant"])
        for rid, (count, severity, example, where) in state["rules"].items():
            sev = Severity(severity)
            at = (str(where[0]), str(where[1]), int(where[2]), str(where[3]))
            stats = self._rules.get(rid)
            if stats is None:
                stats = self._rules[rid] = _RuleStats(severity=sev, example=example, where=at)
            elif sev.rank > stats.severity.rank:
                stats.severity, stats.example, stats.where = sev, example, at
            stats.count += int(count)
        for name, (exchanges, noncompliant, rules) in state["routes"].items():
            route = self._route(name)
            route.exchanges += int(exchanges)
            route.noncompliant += int(noncompliant)
            route.rules.update(rules)
        for method, status, n, bad in state["pairs"]:
            self._pairs[(method, int(status))] += int(n)
            self._pairs_bad[(method, int(status))] += int(bad)
        self._severities.update(state["severities"])
        self._timeline.merge(state["timeline"])
        for status, counts in state["advice"].items():
            self._advice.setdefault(int(status), Counter()).update(counts)
        for rule, route in state.get("url_seen", ()):
            if (rule, route) in self._url_seen:  # both counted it: once per route
                stats = self._rules[rule]
                stats.count -= 1
                self._severities[stats.severity.value] -= 1
                self._routes[route].rules[rule] -= 1
            self._url_seen.add((rule, route))
        self.apis.merge(state.get("apis", {}))

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
            method, path, status, request_id = stats.where
            rules[rid] = {
                "count": stats.count,
                "severity": stats.severity.value,
                "source": rule.source if rule is not None else "",
                "example": stats.example,
                "example_exchange": {
                    "method": method,
                    "path": path,
                    "status": status,
                    "request_id": request_id,
                },
            }
            if rule is not None and rule.category == "url":
                rules[rid]["per"] = "route"  # counted once per route
        routes = {
            name: {
                "exchanges": r.exchanges,
                "noncompliant": r.noncompliant,
                "top_rules": [list(kv) for kv in _top(r.rules)],
                "by_rule": dict(sorted(r.rules.items())),
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
            "by_severity": {s.value: self._severities[s.value] for s in Severity},
            "rules": rules,
            "routes": routes,
            "method_status": pairs,
            "retry_advice": advice,
            "timeline": self._timeline.series(),
            "apis": self.apis.as_dict(),
        }
        if self.profile is not None:
            out["profile"] = {"name": self.profile.name, "version": self.profile.version}
            out["handling"] = {
                str(status): self._handling_text(status) for status in sorted(self._advice)
            }
            pairs_seen = {pair: (n, self._pairs_bad[pair]) for pair, n in self._pairs.items()}
            fired = {rid: stats.count for rid, stats in self._rules.items()}
            out["coverage"] = coverage(self.profile, pairs_seen, fired)
        return out

    def _handling_text(self, status: int) -> str:
        row = self.profile.handling_row(status) if self.profile is not None else None
        if row is not None:
            return row.text_en
        return f"no row for {status} in the handling table, so no retry is advised"


# --- rendering ------------------------------------------------------------------------


def _top(rules: Counter[str]) -> list[tuple[str, int]]:
    """The most frequent rules, ties by rule id (the same however the counts were merged)."""
    return sorted(rules.items(), key=lambda kv: (-kv[1], kv[0]))[:_TOP_RULES]


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
        [rid, r["severity"], _count(r), cut(r.get("source", "")), cut(r["example"])]
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
        ("Per API", ["api", "exchanges", "api-info", "field naming"], api_rows(d.get("apis", {}))),
    ]


def _count(rule: dict[str, Any]) -> str:
    n = str(rule["count"])
    return f"{n} route{'s' if rule['count'] != 1 else ''}" if rule.get("per") == "route" else n


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
    if "coverage" in d:
        for title, headers, rows in coverage_tables(d["coverage"]):
            lines += ["", title, ""]
            lines += _table(headers, rows) if rows else ["(none)"]
        lines += ["", MATRIX_LEGEND]
        for label, items in never_exercised(d["coverage"]):
            lines += _wrap_items(label, items, 100)
    return "\n".join(lines) + "\n"


def _wrap_items(label: str, items: list[str], width: int) -> list[str]:
    """``label: a, b, c`` wrapped at ``width``, never inside an item."""
    lines, line = [], f"{label}:"
    for i, item in enumerate(items or ["-"]):
        piece = f" {item}," if i < len(items) - 1 else f" {item}"
        if len(line) + len(piece) > width:
            lines.append(line)
            line = " "
        line += piece
    return [*lines, line]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(d: dict[str, Any]) -> str:
    """The report as a Markdown document (GitHub tables)."""
    lines = ["# Compliance report", "", _headline(d)]
    lines += _md_sections(_sections(d, 200))
    if "coverage" in d:
        lines += ["", render_coverage_markdown(d["coverage"])]
    return "\n".join(lines) + "\n"


def _md_sections(sections: list[tuple[str, list[str], list[list[str]]]]) -> list[str]:
    lines = []
    for title, headers, rows in sections:
        lines += ["", f"## {title}", ""]
        if not rows:
            lines.append("(none)")
            continue
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join("---" for _ in headers) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_coverage_markdown(cov: dict[str, Any]) -> str:
    """The guideline coverage (``as_dict()["coverage"]``) as Markdown sections."""
    lines = _md_sections(coverage_tables(cov))
    lines += ["", MATRIX_LEGEND, ""]
    lines += [f"- {label}: {', '.join(items) or '-'}" for label, items in never_exercised(cov)]
    return "\n".join(lines).lstrip("\n")


render_report_text = render_text  # the name `auditproxy demo` imports

__all__ = [
    "Report",
    "render_coverage_markdown",
    "render_markdown",
    "render_report_text",
    "render_text",
]
