"""Guideline coverage: matrix cells, handling rows and rules, exercised or never."""

from __future__ import annotations

from auditproxy.core.coverage import coverage, uncovered
from auditproxy.core.engine import Profile, audit, retry_advice
from auditproxy.core.report import Report, render_markdown, render_text

from .conftest import IMF_DATE, make_exchange

PAIRS = {("GET", 200): (3, 1), ("HEAD", 200): (1, 0), ("DELETE", 200): (2, 2),
         ("POST", 418): (1, 1)}  # fmt: skip
FIRED = {"ARP.02.METHOD-STATUS": 2, "STATUS.UNKNOWN": 1}


def _cell(cov: dict, method: str, status: int) -> dict:  # type: ignore[type-arg]
    (row,) = [r for r in cov["matrix"]["rows"] if r["status"] == status]
    (cell,) = [c for c in row["cells"] if c["method"] == method]
    return cell  # type: ignore[no-any-return]


def test_matrix_cells_count_exchanges_with_head_read_as_get(digg: Profile) -> None:
    """A cell holds its exchanges (HEAD counted as GET); listed cells never seen are listed."""
    cov = coverage(digg, PAIRS, FIRED)
    assert _cell(cov, "GET", 200) == {
        "method": "GET", "listed": True, "exchanges": 4, "compliant": 3, "noncompliant": 1,
    }  # fmt: skip
    delete = _cell(cov, "DELETE", 200)
    assert (delete["listed"], delete["exchanges"], delete["noncompliant"]) == (False, 2, 2)
    assert cov["matrix"]["methods"] == ["POST", "GET", "PUT", "DELETE", "PATCH"]
    listed = sum(len(methods) for methods in digg.matrix.values())
    assert cov["summary"]["matrix"] == {"total": listed, "exercised": 1}
    assert "GET 200" not in cov["never"]["matrix"]
    assert "POST 201" in cov["never"]["matrix"]
    assert "DELETE 200" not in cov["never"]["matrix"]  # not listed: nothing expected there
    assert len(cov["never"]["matrix"]) == listed - 1


def test_handling_rows_take_class_rows_and_skip_unused(digg: Profile) -> None:
    """200 counts for the 2xx class row; a status without a row counts nowhere; unused
    rows are shown but never expected."""
    cov = coverage(digg, PAIRS, FIRED)
    rows = {h["status"]: h for h in cov["handling"]}
    assert (rows["2xx"]["exchanges"], rows["2xx"]["noncompliant"]) == (6, 3)
    assert sum(h["exchanges"] for h in cov["handling"]) == 6  # 418 has no row
    assert rows["300"]["unused"]
    assert "300" not in cov["never"]["handling"]
    assert "404" in cov["never"]["handling"]
    assert "2xx" not in cov["never"]["handling"]
    expected = [h for h in cov["handling"] if not h["unused"]]
    assert cov["summary"]["handling"] == {"total": len(expected), "exercised": 1}
    assert [h["status"] for h in cov["handling"]][:3] == ["1xx", "2xx", "300"]


def test_rules_checked_passed_fired(digg: Profile) -> None:
    """A rule is checked where its filters match; fired comes from the findings."""
    cov = coverage(digg, PAIRS, FIRED)
    rules = {r["id"]: r for r in cov["rules"]}
    assert rules["ARP.02.METHOD-STATUS"] | {} == {
        "id": "ARP.02.METHOD-STATUS", "severity": "should", "source": "DIGG ARP.02",
        "checked": 7, "passed": 5, "fired": 2,
    }  # fmt: skip
    assert rules["RFC9110-405-ALLOW"]["checked"] == 0  # only 405 responses
    assert "RFC9110-405-ALLOW" in cov["never"]["rules"]
    assert all(r.enabled for r in digg.rules if r.id in rules)
    assert len(rules) == sum(r.enabled for r in digg.rules)


def test_uncovered_gate_lines(digg: Profile) -> None:
    """The gate names each requested kind with something never exercised, and nothing else."""
    cov = coverage(digg, PAIRS, FIRED)
    lines = uncovered(cov, ["handling", "rules"])
    assert len(lines) == 2
    assert lines[0].startswith(f"{len(cov['never']['handling'])} handling table rows never")
    assert "404" in lines[0]
    assert "RFC9110-405-ALLOW" in lines[1]
    full = {**cov, "never": {"matrix": [], "handling": [], "rules": []}}
    assert uncovered(full, ["matrix", "handling", "rules"]) == []


def test_report_carries_coverage_and_renders_it(digg: Profile) -> None:
    """The report's summary holds the coverage of what it counted; text and Markdown show it."""
    report = Report(digg)
    cases = [
        make_exchange("GET", 200, {"Date": IMF_DATE, "Content-Type": "application/json"}, b"{}"),
        make_exchange("DELETE", 405, {"Date": IMF_DATE}),
    ]
    for ex in cases:
        report.add(ex, audit(ex, digg), retry_advice(ex, digg))
    d = report.as_dict()
    cov = d["coverage"]
    assert _cell(cov, "GET", 200)["compliant"] == 1
    assert _cell(cov, "DELETE", 405) == {
        "method": "DELETE", "listed": True, "exchanges": 1, "compliant": 0, "noncompliant": 1,
    }  # fmt: skip
    allow = {r["id"]: r for r in cov["rules"]}["RFC9110-405-ALLOW"]
    assert (allow["checked"], allow["fired"]) == (1, 1)
    text = render_text(d)
    assert "Coverage of the ARP.02 matrix: 2 of" in text
    assert "405     never  never  never  1/1     never" in text
    assert "Never exercised handling rows: 1xx, 301," in text
    md = render_markdown(d)
    assert "## Coverage of the rules: " in md
    # 200 is listed for GET (seen) and PUT (not seen); POST 200 is not listed
    assert "- Never exercised ARP.02 cells: PUT 200, POST 201, " in md
    assert Report().as_dict().get("coverage") is None  # no profile, no tables to cover
