"""The HTML report of a real demo recording, opened in headless Chromium.

`auditproxy demo --once` sends its traffic through the real proxy to the sample
upstream and records it; `auditproxy audit --format html` turns the recording into
report.html. The browser must load it with no console error and no request but the
file itself, show the charts, the heat map and the coverage grid, and print the same
numbers as `auditproxy audit --format json`. A screenshot is left in the test's
temporary directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from auditproxy.cli import main
from auditproxy.profiles import load_profile
from tests.browser import assert_alone_and_clean, dangling_links, open_page, requires_chromium

pytestmark = [pytest.mark.slow, requires_chromium]


def record_demo(directory: Path, requests: int = 150) -> list[Path]:
    """The JSONL files `auditproxy demo --once` records."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITPROXY_")}
    proc = subprocess.run(
        [sys.executable, "-m", "auditproxy", "demo", "--once", "--requests", str(requests),
         "--record-dir", str(directory)],
        capture_output=True, text=True, timeout=120, check=False, env=env, cwd=directory.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(directory.glob("auditproxy-*.jsonl"))
    assert files, "the demo recorded nothing"
    return files


URL_RULES = {r.id for r in load_profile("digg").rules if r.category == "url"}


def report_counts(doc: dict[str, Any]) -> tuple[Counter[str], Counter[str]]:
    """Findings per rule and per severity as the report counts them: a URL rule (it
    judges the route template) once per route, every other finding once per exchange."""
    by_rule: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    for e in doc["exchanges"]:
        for f in e["findings"]:
            if f["rule"] in URL_RULES:
                if (f["rule"], e["route"]) in seen:
                    continue
                seen.add((f["rule"], e["route"]))
            by_rule[f["rule"]] += 1
            by_severity[f["severity"]] += 1
    return by_rule, by_severity


async def text(visit: Any, selector: str) -> str:
    return (await visit.page.locator(selector).inner_text()).strip()


async def test_demo_recording_report_in_chromium(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """report.html of the demo's traffic: no console error, nothing loaded, charts, heat
    map and coverage grid shown, numbers equal to the JSON output."""
    files = [str(f) for f in record_demo(tmp_path / "rec")]
    report = tmp_path / "report.html"
    main(["audit", "--format", "html", "-o", str(report), *files])
    main(["audit", "--format", "json", *files])
    doc = json.loads(capsys.readouterr().out)
    summary, cov = doc["summary"], doc["coverage"]
    url = report.as_uri()

    async with open_page(url, tmp_path / "chromium-profile") as visit:
        page = visit.page
        await assert_alone_and_clean(visit, url, tmp_path / "report.png")

        # the headline
        assert await text(visit, "#n-exchanges") == str(summary["exchanges"])
        assert await text(visit, "#n-compliant") == str(summary["compliant"])
        assert await text(visit, "#n-noncompliant") == str(summary["noncompliant"])
        n = summary["exchanges"]
        assert await text(visit, "#pct-compliant") == f"{100 * summary['compliant'] / n:.1f}%"
        by_rule, severities = report_counts(doc)
        assert set(by_rule) == set(summary["by_rule"])
        for sev in ("must", "should", "may"):
            assert await text(visit, f"#n-{sev}") == str(severities[sev]), sev

        # findings per rule: one row (and bar) per rule, the JSON's count, a working link
        rows = page.locator("#findings + table tbody tr")
        assert await rows.count() == len(summary["by_rule"])
        for rule, count in by_rule.items():
            row = page.locator(f"[id='finding-{rule}']")
            assert await row.locator("td.count").inner_text() == str(count), rule
            assert await row.locator("svg.bar rect").count() == 2
        assert await dangling_links(page) == []

        # heat map: a row per route, a column per rule; route x rule counts add up
        heat = page.locator("table.heat")
        assert await heat.locator("tbody tr").count() == len({e["route"] for e in doc["exchanges"]})
        assert await heat.locator("th.rule").count() == len(summary["by_rule"])
        cells = await heat.locator("td.cell").all_inner_texts()
        assert sum(int(c) for c in cells if c.strip().isdigit()) == sum(by_rule.values())

        # compliance over time: bars whose exchanges add up to the total
        bars = page.locator("#timeline ~ svg.chart g title")
        labels = await bars.all_text_contents()
        assert labels
        assert sum(int(label.split(": ")[1].split()[0]) for label in labels) == n

        # coverage: the grid is the whole matrix; the summary and never-lists are the JSON's
        rows_cov = cov["matrix"]["rows"]
        grid = page.locator("table.grid td.c")
        assert await grid.count() == len(rows_cov) * len(cov["matrix"]["methods"])
        never_cells = sum(1 for t in await grid.all_inner_texts() if t.strip() == "never")
        assert never_cells == len(cov["never"]["matrix"]) > 0
        for kind in ("matrix", "handling", "rules"):
            s = cov["summary"][kind]
            assert await text(visit, f"#cov-{kind} .exercised") == str(s["exercised"]), kind
            assert await text(visit, f"#cov-{kind} .total") == str(s["total"]), kind
        assert ", ".join(cov["never"]["handling"]) in await text(visit, "#never-handling")
        assert await page.locator(".tiles .tile").count() == len(cov["handling"])

        # laid out for the window: nothing wider than the viewport
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1200
    shot = (tmp_path / "report.png").read_bytes()
    assert shot.startswith(b"\x89PNG")
    assert len(shot) > 50_000
