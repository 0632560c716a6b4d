"""Output formats of ``auditproxy audit``: text, json (SPEC §9), junit, sarif, markdown, html.

Each formatter takes the audited exchanges, the ``--fail-on`` threshold and the
profile, and returns the whole document as a string.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any
from xml.etree import ElementTree as ET

from auditproxy import __version__
from auditproxy.core.findings import Finding, Severity
from auditproxy.core.profile import Profile
from auditproxy.core.report import render_coverage_markdown, render_text
from auditproxy.core.sources import help_uri
from auditproxy.html_report import to_html
from auditproxy.offline import Audited, report_of

FAIL_ON = {"must": 3, "should": 2, "may": 1, "never": 99}
_SARIF_LEVEL = {"must": "error", "should": "warning", "may": "note", "error": "none"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def failing(f: Finding, fail_on: str) -> bool:
    return f.severity != Severity.ERROR and f.severity.rank >= FAIL_ON[fail_on]


def summary(results: Sequence[Audited]) -> dict[str, Any]:
    by_rule: Counter[str] = Counter(f.rule for r in results for f in r.findings)
    noncompliant = sum(1 for r in results if any(f.counts for f in r.findings))
    return {
        "exchanges": len(results),
        "compliant": len(results) - noncompliant,
        "noncompliant": noncompliant,
        "by_rule": dict(sorted(by_rule.items())),
    }


def to_json(results: Sequence[Audited], fail_on: str, profile: Profile | None = None) -> str:
    doc: dict[str, Any] = {
        "summary": summary(results),
        "exchanges": [
            {
                "source": r.source,
                "method": r.method,
                "url": r.url,
                "status": r.status,
                "route": r.route,
                "findings": [f.as_dict() for f in r.findings],
                "retry_advice": r.advice.as_dict(),
            }
            for r in results
        ],
    }
    if profile is not None:
        doc["coverage"] = report_of(results, profile).as_dict()["coverage"]
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _table(rows: list[list[str]], headers: list[str]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]  # fmt: skip

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def to_text(results: Sequence[Audited], fail_on: str, profile: Profile | None = None) -> str:
    """One row per exchange, then the same compliance report as the live ``/-/report``."""
    rows = []
    for r in results:
        rules = ", ".join(f"{f.rule}({f.severity.value})" for f in r.findings) or "ok"
        rows.append([r.source, r.method, str(r.status), _clip(r.route, 32), rules])
    out = _table(rows, ["SOURCE", "METHOD", "STATUS", "ROUTE", "FINDINGS"])
    return "\n".join(out) + "\n\n" + render_text(report_of(results, profile).as_dict())


def to_markdown(results: Sequence[Audited], fail_on: str, profile: Profile | None = None) -> str:
    s = summary(results)
    out = [
        "# auditproxy audit",
        "",
        f"**{s['exchanges']}** exchanges: **{s['compliant']}** compliant, "
        f"**{s['noncompliant']}** non-compliant.",
        "",
    ]
    if s["by_rule"]:
        out += ["| Rule | Count |", "|---|---:|"]
        out += [f"| `{rule}` | {n} |" for rule, n in s["by_rule"].items()]
        out.append("")
    flagged = [r for r in results if r.findings]
    if flagged:
        out += ["| Source | Method | Status | Route | Findings |", "|---|---|---:|---|---|"]
        for r in flagged:
            found = "<br>".join(f"`{f.rule}` ({f.severity.value}): {_md(f.message)}"
                                for f in r.findings)  # fmt: skip
            out.append(f"| {_md(r.source)} | {r.method} | {r.status} | {_md(r.route)} | {found} |")
    if profile is not None:
        coverage = report_of(results, profile).as_dict()["coverage"]
        out += ["", render_coverage_markdown(coverage)]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _finding_line(f: Finding) -> str:
    return f"{f.rule} ({f.severity.value}): {f.message}"


def to_junit(results: Sequence[Audited], fail_on: str, profile: Profile | None = None) -> str:
    """JUnit XML as the Jenkins xUnit ``junit-10.xsd`` defines it: one testcase per
    exchange, at most one ``<failure>`` (listing every failing finding) per testcase,
    findings below ``--fail-on`` in ``<system-out>``."""
    tests, failures = str(len(results)), 0
    suite = ET.Element("testsuite", name="auditproxy", tests=tests, errors="0", skipped="0")
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.route or "other",
                             name=f"{r.method} {r.url} -> {r.status} [{r.source}]",
                             time=_seconds(r))  # fmt: skip
        bad = [f for f in r.findings if failing(f, fail_on)]
        if bad:
            failures += 1
            rules = ", ".join(dict.fromkeys(f.rule for f in bad))
            message = bad[0].message if len(bad) == 1 else f"{len(bad)} findings: {rules}"
            node = ET.SubElement(case, "failure", type=rules, message=message)
            node.text = "\n".join(_finding_line(f) for f in bad)
        info = [f for f in r.findings if not failing(f, fail_on)]
        if info:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(_finding_line(f) for f in info)
    total = f"{sum(float(c.get('time', '0')) for c in suite):.3f}"
    suite.set("failures", str(failures))
    suite.set("time", total)
    root = ET.Element("testsuites", name="auditproxy", tests=tests, failures=str(failures),
                      errors="0", time=total)  # fmt: skip
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _seconds(r: Audited) -> str:
    """The exchange's recorded duration in seconds (JUnit's ``time``)."""
    return f"{max(r.exchange.timing.total, 0.0):.3f}"


def _location(source: str) -> dict[str, Any]:
    path, sep, line = source.rpartition(":")
    if sep and line.isdigit():
        return {"physicalLocation": {"artifactLocation": {"uri": path},
                                     "region": {"startLine": int(line)}}}  # fmt: skip
    path, _, index = source.partition("#")
    loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": path}}}
    if index:
        loc["logicalLocations"] = [{"fullyQualifiedName": f"log.entries[{index}]"}]
    return loc


def _sarif_rule(rule_id: str, seen: Finding, profile: Profile | None) -> dict[str, Any]:
    rule = profile.rule(rule_id) if profile is not None else None
    short = rule.message if rule is not None else seen.message
    full = short
    if rule is not None:
        parts = (short, rule.description, f"Source: {rule.source} ({rule.severity.value}).")
        full = " ".join(p for p in parts if p)
    out: dict[str, Any] = {
        "id": rule_id,
        "shortDescription": {"text": _plain(short)},
        "fullDescription": {"text": _plain(full)},
        "helpUri": help_uri(rule.source if rule is not None else ""),
        "defaultConfiguration": {"level": _SARIF_LEVEL[seen.severity.value]},
    }
    if rule is not None:
        out["properties"] = {"source": rule.source, "severity": rule.severity.value}
    return out


def _plain(template: str) -> str:
    """A message template as a sentence: ``{status}`` reads ``<status>``."""
    return template.replace("{", "<").replace("}", ">")


def to_sarif(results: Sequence[Audited], fail_on: str, profile: Profile | None = None) -> str:
    rules: dict[str, Finding] = {}
    for r in results:
        for f in r.findings:
            rules.setdefault(f.rule, f)
    ids = sorted(rules)
    index = {rule: i for i, rule in enumerate(ids)}
    sarif_results = [
        {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": _SARIF_LEVEL[f.severity.value],
            "message": {"text": f"{r.method} {r.url} -> {r.status}: {f.message}"},
            "locations": [_location(r.source)],
            "properties": {"severity": f.severity.value, "route": r.route, "status": r.status},
        }
        for r in results
        for f in r.findings
    ]
    driver = {
        "name": "auditproxy",
        "version": __version__,
        "rules": [_sarif_rule(rule, rules[rule], profile) for rule in ids],
    }
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": sarif_results}],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


FORMATS: dict[str, Callable[[Sequence[Audited], str, Profile | None], str]] = {
    "text": to_text,
    "json": to_json,
    "junit": to_junit,
    "sarif": to_sarif,
    "markdown": to_markdown,
    "html": to_html,
}
