"""Report: totals, per rule, per route, per method x status, advice, and renderers."""

from __future__ import annotations

import json

from auditproxy.core.engine import Profile, audit, retry_advice
from auditproxy.core.report import Report, render_markdown, render_text

from .conftest import IMF_DATE, make_exchange


def _report(digg: Profile) -> Report:
    report = Report(digg)
    ok = {"Date": IMF_DATE, "Content-Type": "application/json"}
    cases = [
        make_exchange("GET", 200, ok, b"{}", route="/v1/orders/{id}"),
        make_exchange("GET", 200, ok, b"{}", route="/v1/orders/{id}"),
        make_exchange("POST", 201, {"Date": IMF_DATE}, route="/v1/orders"),
        make_exchange("GET", 201, {"Date": IMF_DATE, "Location": "/o/1"}, route="/v1/orders/{id}"),
        make_exchange("POST", 503, {}, route="/v1/orders"),
        make_exchange("BREW", 418, {"Date": IMF_DATE}, route="/v1/pot"),
    ]
    for ex in cases:
        report.add(ex, audit(ex, digg), retry_advice(ex, digg))
    return report


def test_totals_rules_routes(digg: Profile) -> None:
    """Totals, per-rule counts with severity and source, and per-route top rules add up."""
    d = _report(digg).as_dict()
    assert d["totals"] == {"exchanges": 6, "compliant": 3, "noncompliant": 3}
    assert d["profile"] == {"name": "digg", "version": "1.2.0"}
    assert sum(d["by_severity"].values()) == sum(r["count"] for r in d["rules"].values())
    assert d["by_severity"]["may"] >= 1  # 503 without Retry-After
    loc = d["rules"]["ARP.03.LOCATION-201"]
    assert (loc["count"], loc["severity"], loc["source"]) == (1, "should", "DIGG ARP.03")
    assert "Location" in loc["example"]
    assert d["rules"]["RFC9110-503-RETRY-AFTER"]["severity"] == "may"
    orders = d["routes"]["/v1/orders"]
    assert (orders["exchanges"], orders["noncompliant"]) == (2, 1)
    assert ["ARP.03.LOCATION-201", 1] in orders["top_rules"]
    assert d["routes"]["/v1/orders/{id}"] == {
        "exchanges": 3, "noncompliant": 1, "top_rules": [["ARP.02.METHOD-STATUS", 1]],
        "by_rule": {"ARP.02.METHOD-STATUS": 1},
    }  # fmt: skip
    json.dumps(d)  # JSON-ready


def test_method_status_pairs_and_advice(digg: Profile) -> None:
    """Method x status counts say whether the pair is in the ARP.02 matrix; advice is counted."""
    d = _report(digg).as_dict()
    pairs = {(p["method"], p["status"]): (p["count"], p["in_matrix"]) for p in d["method_status"]}
    assert pairs == {
        ("GET", 200): (2, True), ("POST", 201): (1, True), ("GET", 201): (1, False),
        ("POST", 503): (1, True), ("OTHER", 418): (1, False),
    }  # fmt: skip
    assert d["retry_advice"]["503"] == {"conditional": 1}  # POST without Idempotency-Key
    assert d["retry_advice"]["200"] == {"never": 2}
    assert d["handling"]["503"].startswith("Retry must be done")


def test_renderers_show_every_section(digg: Profile) -> None:
    """Text and Markdown renderings carry the headline, rule ids, routes and pairs."""
    d = _report(digg).as_dict()
    for text in (render_text(d), render_markdown(d)):
        assert "6 exchanges audited against profile digg 1.2.0" in text
        assert "3 non-compliant (50.0%)" in text
        for needle in ("ARP.03.LOCATION-201", "/v1/orders/{id}", "OTHER", "418", "conditional 1"):
            assert needle in text
    assert "| rule | severity | count | source | example |" in render_markdown(d)


def test_empty_report_renders() -> None:
    """A report with no exchanges renders without errors and says so."""
    d = Report().as_dict()
    assert d["totals"] == {"exchanges": 0, "compliant": 0, "noncompliant": 0}
    assert "0 exchanges audited" in render_text(d)
    assert "(none)" in render_markdown(d)
