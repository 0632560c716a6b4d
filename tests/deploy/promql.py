"""Read the PromQL of the shipped dashboards and alert rules, for the deploy tests.

The dashboards are parsed, never copied: every ``expr`` of every panel target
(rows and nested panels included) comes back with its panel title, and Grafana's
template variables are substituted with values Prometheus accepts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
PROMETHEUS_DIR = ROOT / "config" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"

# Grafana's built-in interval variables, as a dashboard over the last hour would set them.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


@dataclass(frozen=True, slots=True)
class Query:
    source: str  # "<dashboard file>: <panel title> [refId]" or "alerts.yml: <alert>"
    expr: str  # as written in the file


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels", []))


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load_dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def dashboard_queries(path: Path) -> list[Query]:
    """Every panel target expression of one dashboard."""
    out = []
    for panel in _panels(load_dashboard(path).get("panels", [])):
        for t in panel.get("targets", []):
            if t.get("expr"):
                src = f"{path.name}: {panel.get('title')} [{t.get('refId')}]"
                out.append(Query(src, t["expr"]))
    return out


def all_dashboard_queries() -> list[Query]:
    return [q for path in dashboard_files() for q in dashboard_queries(path)]


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [r for g in data["groups"] for r in g["rules"]]


def alert_queries() -> list[Query]:
    return [Query(f"alerts.yml: {r['alert']}", r["expr"]) for r in alert_rules() if "alert" in r]


def substitute(expr: str, variables: dict[str, str]) -> str:
    """``expr`` with Grafana variables replaced; unknown ones (``${1}`` in a
    label_replace template) are left as they are, as Grafana does."""
    values = {**BUILTINS, **variables}

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        return values.get(name, m.group(0))

    return _VAR.sub(repl, expr)


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bauditproxy_[a-z_]+\b", expr))
