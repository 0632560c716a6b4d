"""The compliance report as one self-contained HTML page.

``render_html(summary, profile)`` turns ``Report.as_dict()`` (live ``/-/report``
or an offline audit) into a page with inline CSS and inline SVG charts: no
script, font, image or stylesheet is fetched, so it opens offline and under the
strict Content-Security-Policy it carries itself (``CSP``; the admin endpoint
sends it as a header too). Jinja2 with autoescaping writes the markup, so every
value that came from traffic (paths, request ids, messages) is escaped.
Geometry (bar widths, heat shades, time buckets) is computed here; the
template only places it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from auditproxy import __version__
from auditproxy.core.profile import Profile
from auditproxy.offline import Audited, report_of

SEVERITIES = ("must", "should", "may", "error")
_HEAT_STEPS = (0.1, 0.25, 0.5, 0.75)  # share of a route's exchanges -> shade 1..5
CHART_WIDTH = 960
CHART_HEIGHT = 180


@cache
def _css() -> str:
    return (resources.files("auditproxy") / "templates" / "report.css").read_text("utf-8")


def csp() -> str:
    """The page's Content-Security-Policy: nothing may load; only its own style block."""
    digest = base64.b64encode(hashlib.sha256(_css().encode()).digest()).decode()
    return (f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; "
            "base-uri 'none'; form-action 'none'")  # fmt: skip


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("auditproxy", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(epoch: float, fraction: bool) -> str:
    t = datetime.fromtimestamp(epoch, UTC)
    return t.strftime("%H:%M:%S.%f")[:11] if fraction else t.strftime("%H:%M:%S")


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    return " ".join(f"{n} {unit}" for n, unit in parts if n)[:20]


def _rules_view(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    rules = d.get("rules", {})
    top = max((r["count"] for r in rules.values()), default=0)
    return [
        {"id": rid, **r, "bar": round(100 * r["count"] / top, 1) if top else 0}
        for rid, r in rules.items()
    ]


def _shade(share: float) -> int:
    return 1 + sum(share >= step for step in _HEAT_STEPS)


def _heatmap(d: Mapping[str, Any]) -> dict[str, Any]:
    """Routes (rows) x rules that fired (columns): count and shade per cell."""
    columns = list(d.get("rules", {}))
    rows = []
    for name, route in d.get("routes", {}).items():
        counts = route.get("by_rule", {})
        n = route["exchanges"]
        cells = [
            {"rule": rid, "count": counts.get(rid, 0),
             "shade": _shade(counts[rid] / n) if counts.get(rid) and n else 0}
            for rid in columns
        ]  # fmt: skip
        rows.append({"route": name, "exchanges": n, "noncompliant": route["noncompliant"],
                     "pct": _pct(n - route["noncompliant"], n), "cells": cells})  # fmt: skip
    return {"columns": columns, "rows": rows}


def _timeline(d: Mapping[str, Any]) -> dict[str, Any] | None:
    """Stacked bars (compliant below, non-compliant above) over the report's time span."""
    tl = d.get("timeline") or {}
    points: Sequence[Sequence[float]] = tl.get("points") or []
    if not points:
        return None
    width = float(tl["bucket_seconds"])
    start, end = points[0][0], points[-1][0] + width
    span = end - start
    top = max(int(p[1]) for p in points)
    scale_x = CHART_WIDTH / span
    scale_y = (CHART_HEIGHT - 20) / top
    bars = []
    for t, n, bad in points:
        x = (t - start) * scale_x
        h_all, h_bad = n * scale_y, bad * scale_y
        bars.append({
            "x": round(x + 0.5, 2), "w": round(max(width * scale_x - 1, 1), 2),
            "y": round(CHART_HEIGHT - h_all, 2), "h": round(h_all - h_bad, 2),
            "h_bad": round(h_bad, 2),
            "label": f"{_clock(t, width < 1)}: {int(n)} exchanges, {int(bad)} non-compliant "
                     f"({_pct(int(n - bad), int(n))} compliant)",
        })  # fmt: skip
    fraction = width < 1
    ticks = [{"x": round(CHART_WIDTH * i / 4, 1), "label": _clock(start + span * i / 4, fraction),
              "anchor": ("start", "middle", "middle", "middle", "end")[i]}
             for i in range(5)]  # fmt: skip
    return {"bars": bars, "ticks": ticks, "top": top, "bucket": _duration(width),
            "width": CHART_WIDTH, "height": CHART_HEIGHT}  # fmt: skip


def _advice(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    handling = d.get("handling", {})
    return [
        {"status": status, "counts": counts, "handling": handling.get(status, "")}
        for status, counts in d.get("retry_advice", {}).items()
    ]


def _coverage(d: Mapping[str, Any]) -> dict[str, Any] | None:
    cov = d.get("coverage")
    if cov is None:
        return None
    top = max((r["checked"] for r in cov["rules"]), default=0)
    rules = [{**r, "bar": round(100 * r["checked"] / top, 1) if top else 0,
              "fired_bar": round(100 * r["fired"] / top, 1) if top else 0}
             for r in cov["rules"]]  # fmt: skip
    summary = {k: {**v, "pct": _pct(v["exercised"], v["total"])}
               for k, v in cov["summary"].items()}  # fmt: skip
    return {**cov, "rules": rules, "summary": summary}


def _catalog(profile: Profile | None) -> list[dict[str, Any]]:
    if profile is None:
        return []
    return [
        {"id": r.id, "severity": r.severity.value, "source": r.source, "enabled": r.enabled,
         "message": r.message, "description": r.description}
        for r in profile.rules
    ]  # fmt: skip


def _headline(d: Mapping[str, Any]) -> dict[str, Any]:
    t = d.get("totals", {})
    n, ok, bad = t.get("exchanges", 0), t.get("compliant", 0), t.get("noncompliant", 0)
    tl = d.get("timeline") or {}
    first, last = tl.get("first"), tl.get("last")
    by_severity = d.get("by_severity", {})
    return {
        "exchanges": n, "compliant": ok, "noncompliant": bad,
        "compliant_pct": _pct(ok, n), "noncompliant_pct": _pct(bad, n),
        "compliant_bar": round(100 * ok / n, 2) if n else 0,
        "severities": {s: by_severity.get(s, 0) for s in SEVERITIES},
        "first": _when(first), "last": _when(last),
        "span": _duration(last - first) if first is not None and last is not None else "-",
    }  # fmt: skip


def render_html(
    d: Mapping[str, Any], profile: Profile | None, *, title: str = "Compliance report",
    origin: str = "", generated: float | None = None,
) -> str:  # fmt: skip
    """The whole page for a report summary (``Report.as_dict()``).

    ``origin`` says where the exchanges came from (files, or the live proxy);
    ``generated`` is the epoch time printed in the footer (omitted when ``None``)."""
    prof = d.get("profile")
    view = {
        "title": title,
        "origin": origin,
        "generated": _when(generated) if generated is not None else "",
        "version": __version__,
        "profile": prof,
        "headline": _headline(d),
        "rules": _rules_view(d),
        "heatmap": _heatmap(d),
        "timeline": _timeline(d),
        "advice": _advice(d),
        "pairs": d.get("method_status", []),
        "coverage": _coverage(d),
        "catalog": _catalog(profile),
        "css": Markup(_css()),  # static package data, hashed into the CSP
        "csp": csp(),
    }
    return _environment().get_template("report.html.j2").render(view)


def to_html(results: Sequence[Audited], fail_on: str, profile: Profile | None = None) -> str:
    """``auditproxy audit --format html``: the report of the audited files."""
    sources = sorted({r.source.rsplit(":", 1)[0].split("#", 1)[0] for r in results})
    origin = ", ".join(sources[:5]) + (f" and {len(sources) - 5} more" if len(sources) > 5 else "")
    d = report_of(results, profile).as_dict()
    return render_html(d, profile, title="Compliance report", origin=f"recordings: {origin}")
