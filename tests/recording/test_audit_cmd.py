"""`auditproxy audit`: formats, exit codes, bad input, and parity with live findings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from auditproxy.cli import main
from auditproxy.core.engine import Profile
from auditproxy.sinks.metrics import Metrics
from tests.recording.factories import DATA, SAMPLE_ROWS, SECRETS, record_sample_traffic


@pytest.fixture
async def recording(
    sample_upstream: str, tmp_path: Path, metrics: Metrics, profile: Profile
) -> tuple[Path, list[list[dict[str, Any]]]]:
    return await record_sample_traffic(sample_upstream, tmp_path / "rec", metrics, profile)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["audit", "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


async def test_json_matches_live_findings_and_spec_shape(
    recording: tuple[Path, list[list[dict[str, Any]]]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Re-auditing a recording gives the live findings, in the SPEC §9 json shape."""
    path, live = recording
    code, doc = run_json(capsys, str(path))
    assert set(doc) == {"summary", "exchanges", "coverage"}  # SPEC §9 plus the coverage
    assert set(doc["summary"]) == {"exchanges", "compliant", "noncompliant", "by_rule"}
    assert doc["summary"]["exchanges"] == len(SAMPLE_ROWS)
    ex0 = doc["exchanges"][0]
    assert set(ex0) == {"source", "method", "url", "status", "route", "findings", "retry_advice"}
    assert ex0["source"] == f"{path}:1"
    assert [e["findings"] for e in doc["exchanges"]] == live
    assert any(live)  # the sample traffic does break rules
    assert code == 1  # must findings exist


@pytest.mark.parametrize("fixture", ["chrome.har", "mitmproxy.har"])
async def test_other_tools_har_gives_the_same_findings(
    fixture: str,
    recording: tuple[Path, list[list[dict[str, Any]]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A browser or mitmproxy HAR of the same traffic audits to the same findings as ours."""
    _, live = recording
    _, doc = run_json(capsys, str(DATA / fixture))
    assert [e["findings"] for e in doc["exchanges"]] == live


async def test_secrets_never_reach_the_file(
    recording: tuple[Path, list[list[dict[str, Any]]]],
) -> None:
    """None of the secrets sent in headers, cookies or the query string is in the recording."""
    path, _ = recording
    text = path.read_text("utf-8")
    assert text.count("\n") == len(SAMPLE_ROWS)
    for secret in SECRETS.values():
        assert secret not in text
    assert "REDACTED" in text


TRACE = {"name": "traceparent", "value": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


def write_lines(tmp_path: Path, *lines: str, torn: str = "") -> Path:
    p = tmp_path / "mixed.jsonl"
    p.write_text("".join(line + "\n" for line in lines) + torn)
    return p


def entry_line(
    status: int, method: str = "GET", headers: list[dict[str, str]] | None = None
) -> str:
    """A HAR entry for a versioned API (VER.05) answering with trace context (SPA.04)."""
    answer = [*(headers or []), TRACE]
    return json.dumps({
        "startedDateTime": "2024-06-03T07:33:20.000Z", "time": 1,
        "request": {"method": method, "url": "http://api.test/v1/orders/1", "headers": []},
        "response": {"status": status, "headers": answer, "content": {"size": 0}},
    })  # fmt: skip


DATE = {"name": "Date", "value": "Mon, 03 Jun 2024 07:33:20 GMT"}


def test_malformed_middle_line_exit_2_rest_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad line is named with file:line, exit 2, and the other lines are still audited."""
    p = write_lines(
        tmp_path, entry_line(200, headers=[DATE]), "{not json", entry_line(204, "DELETE", [DATE])
    )
    code = main(["audit", "--format", "json", str(p)])
    captured = capsys.readouterr()
    assert code == 2
    assert f"{p}:2" in captured.err
    assert json.loads(captured.out)["summary"]["exchanges"] == 2


def test_torn_last_line_is_only_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A torn last line prints a warning and does not change the exit code."""
    p = write_lines(tmp_path, entry_line(200, headers=[DATE]), torn=entry_line(200)[:30])
    code = main(["audit", "--format", "json", str(p)])
    captured = capsys.readouterr()
    assert code == 0
    assert "warning" in captured.err
    assert f"{p}:2" in captured.err


def test_unreadable_file_exit_2_others_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file gives exit 2; the readable file is still reported."""
    p = write_lines(tmp_path, entry_line(200, headers=[DATE]))
    code = main(["audit", "--format", "json", str(tmp_path / "missing.jsonl"), str(p)])
    captured = capsys.readouterr()
    assert code == 2
    assert "missing.jsonl" in captured.err
    assert json.loads(captured.out)["summary"]["exchanges"] == 1


@pytest.mark.parametrize(
    ("fail_on", "expected"), [("must", 1), ("should", 1), ("may", 1), ("never", 0)]
)
def test_fail_on_sets_the_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fail_on: str, expected: int
) -> None:
    """A must finding (405 without Allow) fails every threshold but never."""
    p = write_lines(tmp_path, entry_line(405, "DELETE", [DATE]))
    assert main(["audit", "--fail-on", fail_on, "--format", "json", str(p)]) == expected


def test_fail_on_must_passes_should_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A should-only finding (GET answered 201) fails --fail-on should, not must."""
    created = [DATE, {"name": "Location", "value": "/v1/orders/1"}]
    p = write_lines(tmp_path, entry_line(201, "GET", created))
    code, doc = run_json(capsys, "--fail-on", "must", str(p))
    assert code == 0
    assert {f["severity"] for f in doc["exchanges"][0]["findings"]} == {"should"}
    assert main(["audit", "--fail-on", "should", "--format", "json", str(p)]) == 1


def test_junit_sarif_markdown_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """junit parses as XML with a failure per must finding; sarif is 2.1.0 with results."""
    p = write_lines(tmp_path, entry_line(405, "DELETE", [DATE]), entry_line(200, headers=[DATE]))
    out = tmp_path / "report.xml"
    assert main(["audit", "--format", "junit", "-o", str(out), str(p)]) == 1
    root = ET.parse(out).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 2
    assert [f.get("type") for f in root.iter("failure")] == ["RFC9110-405-ALLOW"]
    assert root.get("failures") == "1"

    main(["audit", "--format", "sarif", str(p)])
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    assert [r["ruleId"] for r in run["results"]] == ["RFC9110-405-ALLOW"]
    assert run["results"][0]["level"] == "error"
    assert run["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["RFC9110-405-ALLOW"]

    main(["audit", "--format", "markdown", str(p)])
    md = capsys.readouterr().out
    assert "| `RFC9110-405-ALLOW` | 1 |" in md

    main(["audit", str(p)])
    text = capsys.readouterr().out
    assert "RFC9110-405-ALLOW(must)" in text
    assert "2 exchanges audited against profile digg" in text
    assert "1 compliant (50.0%), 1 non-compliant (50.0%)" in text


def test_config_overrides_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--config applies the rules: overrides, so a disabled rule is not reported."""
    p = write_lines(tmp_path, entry_line(405, "DELETE", [DATE]))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("profile: digg\nrules:\n  RFC9110-405-ALLOW: {enabled: false}\n")
    code, doc = run_json(capsys, "--config", str(cfg), str(p))
    assert code == 0
    assert doc["exchanges"][0]["findings"] == []


def test_bad_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config with a bad rules: value is a config error naming the file, exit 2."""
    p = write_lines(tmp_path, entry_line(200))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("rules: [1, 2]\n")
    assert main(["audit", "--config", str(cfg), str(p)]) == 2
    assert str(cfg) in capsys.readouterr().err


def test_reaudit_under_a_copy_keeps_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several files are audited together, each exchange naming its own file."""
    a = write_lines(tmp_path, entry_line(200, headers=[DATE]))
    b = tmp_path / "b.jsonl"
    shutil.copy(a, b)
    _, doc = run_json(capsys, str(a), str(b))
    assert [e["source"] for e in doc["exchanges"]] == [f"{a}:1", f"{b}:1"]
