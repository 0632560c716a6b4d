"""Guideline coverage: which parts of the profile's tables the traffic exercised.

A staging run that never saw a 405 proves nothing about ``Allow``. ``coverage``
takes what a report counted (exchanges and non-compliant exchanges per method x
status, findings per rule) and lays it over the profile:

* ARP.02 matrix: every status row x method column, listed (X) or not, with the
  exchanges seen there (the ``method_status`` rule's aliases apply: HEAD is GET);
* the handling table: every row (a code, or a class row such as ``2xx`` for the
  codes without their own row), with the exchanges it answered for;
* every enabled rule: on how many exchanges it was checked (its status and
  method filters matched), how often it passed and how often it fired.

``never`` lists what the traffic never exercised: listed matrix cells, handling
rows not marked unused, enabled rules. Pure: counts in, a JSON-ready dict out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from auditproxy.core.engine import compile_profile
from auditproxy.core.httpsyntax import reason_phrase
from auditproxy.core.profile import HandlingRow, Profile

Pairs = Mapping[tuple[str, int], tuple[int, int]]  # (method, status) -> (exchanges, non-compliant)

KINDS = ("matrix", "handling", "rules")


def _counts(n: int, bad: int) -> dict[str, int]:
    return {"exchanges": n, "compliant": n - bad, "noncompliant": bad}


def _aliases(profile: Profile) -> Mapping[str, str]:
    for rule in profile.rules:
        if rule.check == "method_status":
            aliases = rule.params.get("method_aliases")
            return aliases if isinstance(aliases, Mapping) else {}
    return {}


def _matrix(profile: Profile, pairs: Pairs) -> dict[str, Any]:
    aliases = _aliases(profile)
    seen: dict[tuple[str, int], list[int]] = {}
    for (method, status), (n, bad) in pairs.items():
        cell = seen.setdefault((aliases.get(method, method), status), [0, 0])
        cell[0] += n
        cell[1] += bad
    rows = []
    for status in sorted(profile.matrix):
        listed = profile.matrix[status]
        cells = []
        for method in profile.matrix_methods:
            n, bad = seen.get((method, status), (0, 0))
            cells.append({"method": method, "listed": method in listed, **_counts(n, bad)})
        rows.append({"status": status, "reason": reason_phrase(status), "cells": cells})
    return {"methods": list(profile.matrix_methods), "rows": rows}


def _row_order(row: HandlingRow) -> tuple[int, int]:
    code = row.status
    return (int(code[0]) * 100, -1) if code.endswith("xx") else (int(code), 0)


def _handling(profile: Profile, pairs: Pairs) -> list[dict[str, Any]]:
    seen: dict[str, list[int]] = {}
    for (_method, status), (n, bad) in pairs.items():
        row = profile.handling_row(status)
        if row is not None:
            counts = seen.setdefault(row.status, [0, 0])
            counts[0] += n
            counts[1] += bad
    rows = sorted([*profile.handling.values(), *profile.handling_classes.values()], key=_row_order)
    out = []
    for row in rows:
        n, bad = seen.get(row.status, (0, 0))
        out.append({"status": row.status, "class": row.klass, "unused": row.unused,
                    "advice": row.advice, **_counts(n, bad)})  # fmt: skip
    return out


def _rules(profile: Profile, pairs: Pairs, fired: Mapping[str, int]) -> list[dict[str, Any]]:
    checked: Counter[str] = Counter()
    table = compile_profile(profile)["all"]
    for (method, status), (n, _bad) in pairs.items():
        for bound in table.checks(status, method):
            checked[bound.rule.id] += n
    out = []
    for rule in profile.rules:
        if not rule.enabled:
            continue
        n, hits = checked[rule.id], min(fired.get(rule.id, 0), checked[rule.id])
        out.append({"id": rule.id, "severity": rule.severity.value, "source": rule.source,
                    "checked": n, "passed": n - hits, "fired": hits})  # fmt: skip
    return out


def coverage(profile: Profile, pairs: Pairs, fired: Mapping[str, int]) -> dict[str, Any]:
    """The profile's matrix cells, handling rows and enabled rules with the traffic's
    counts, a summary (``exercised`` of ``total``) and the ``never`` lists."""
    matrix = _matrix(profile, pairs)
    handling = _handling(profile, pairs)
    rules = _rules(profile, pairs, fired)
    listed = [(r["status"], c) for r in matrix["rows"] for c in r["cells"] if c["listed"]]
    expected = [h for h in handling if not h["unused"]]
    never = {
        "matrix": [f"{c['method']} {status}" for status, c in listed if not c["exchanges"]],
        "handling": [h["status"] for h in expected if not h["exchanges"]],
        "rules": [r["id"] for r in rules if not r["checked"]],
    }
    totals = {"matrix": len(listed), "handling": len(expected), "rules": len(rules)}
    summary = {k: {"total": totals[k], "exercised": totals[k] - len(never[k])} for k in KINDS}
    return {"summary": summary, "matrix": matrix, "handling": handling, "rules": rules,
            "never": never}  # fmt: skip


def uncovered(cov: Mapping[str, Any], kinds: list[str] | tuple[str, ...]) -> list[str]:
    """One line per kind in ``kinds`` that has items never exercised (the CI gate)."""
    labels = {"matrix": "ARP.02 matrix cells", "handling": "handling table rows",
              "rules": "enabled rules"}  # fmt: skip
    lines = []
    for kind in kinds:
        items = cov["never"][kind]
        if items:
            lines.append(f"{len(items)} {labels[kind]} never exercised: {', '.join(items)}")
    return lines


# --- as tables for the text and Markdown reports -------------------------------------


def _cell_text(cell: Mapping[str, Any]) -> str:
    n, bad = cell["exchanges"], cell["noncompliant"]
    if not n:
        return "never" if cell["listed"] else "."
    text = f"{n}/{bad}" if bad else str(n)
    return text if cell["listed"] else text + "*"


def coverage_tables(cov: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) for the matrix grid, exercised handling rows and checked rules."""
    s = cov["summary"]
    matrix = cov["matrix"]
    grid = [[str(r["status"]), *(_cell_text(c) for c in r["cells"])] for r in matrix["rows"]]
    handling = [
        [h["status"], str(h["exchanges"]), str(h["compliant"]), str(h["noncompliant"])]
        for h in cov["handling"]
        if h["exchanges"]
    ]
    rules = [
        [r["id"], r["severity"], str(r["checked"]), str(r["passed"]), str(r["fired"])]
        for r in cov["rules"]
        if r["checked"]
    ]

    def title(name: str, kind: str, what: str) -> str:
        return f"{name}: {s[kind]['exercised']} of {s[kind]['total']} {what} exercised"

    return [
        (title("Coverage of the ARP.02 matrix", "matrix", "listed cells"),
         ["status", *matrix["methods"]], grid),
        (title("Coverage of the handling table", "handling", "rows not marked unused"),
         ["row", "exchanges", "compliant", "non-compliant"], handling),
        (title("Coverage of the rules", "rules", "enabled rules"),
         ["rule", "severity", "checked", "passed", "fired"], rules),
    ]  # fmt: skip


MATRIX_LEGEND = (
    "Cells: N exchanges, N/M with M non-compliant; never: listed, unseen; .: not listed; "
    "*: seen, unlisted"
)


def never_exercised(cov: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """(label, items) per kind: what the traffic never exercised."""
    names = {"matrix": "ARP.02 cells", "handling": "handling rows", "rules": "rules"}
    return [(f"Never exercised {names[k]}", list(cov["never"][k])) for k in KINDS]
