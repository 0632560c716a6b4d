"""`auditproxy export`: one HAR 1.2 file, valid against the schema, sorted by start time."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from auditproxy.cli import main
from auditproxy.core.engine import Profile
from auditproxy.sinks.metrics import Metrics
from tests.recording.factories import DATA, SAMPLE_ROWS, record_sample_traffic

SCHEMA = json.loads((DATA / "har-1.2.schema.json").read_text("utf-8"))


async def test_export_is_valid_har_sorted_by_start(
    sample_upstream: str, tmp_path: Path, metrics: Metrics, profile: Profile
) -> None:
    """Two recordings export to one schema-valid HAR, entries in startedDateTime order."""
    first, _ = await record_sample_traffic(sample_upstream, tmp_path / "a", metrics, profile)
    second, _ = await record_sample_traffic(sample_upstream, tmp_path / "b", metrics, profile)
    out = tmp_path / "out.har"
    # The later recording first on the command line: the export still sorts by time.
    assert main(["export", str(second), str(first), "--har", str(out)]) == 0
    doc = json.loads(out.read_text("utf-8"))
    jsonschema.validate(doc, SCHEMA)
    log = doc["log"]
    assert log["version"] == "1.2"
    assert log["creator"]["name"] == "auditproxy"
    starts = [e["startedDateTime"] for e in log["entries"]]
    assert len(starts) == 2 * len(SAMPLE_ROWS)
    assert starts == sorted(starts)
    assert log["entries"][0]["_audit"]["request_id"] == SAMPLE_ROWS[0]


def test_export_reports_bad_lines_and_keeps_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed line is named (exit 2); the good lines are still exported."""
    line = json.dumps({"startedDateTime": "2024-06-03T07:33:20.000Z", "time": 1,
                       "request": {"method": "GET", "url": "http://a/"},
                       "response": {"status": 200}})  # fmt: skip
    src = tmp_path / "r.jsonl"
    src.write_text(f"{line}\nnot json\n{line}\n")
    out = tmp_path / "out.har"
    assert main(["export", str(src), "--har", str(out)]) == 2
    assert f"{src}:2" in capsys.readouterr().err
    assert len(json.loads(out.read_text("utf-8"))["log"]["entries"]) == 2


def test_export_merges_a_foreign_har(tmp_path: Path) -> None:
    """A HAR from another tool can be merged into the export."""
    out = tmp_path / "out.har"
    assert main(["export", str(DATA / "chrome.har"), "--har", str(out)]) == 0
    doc = json.loads(out.read_text("utf-8"))
    jsonschema.validate(doc, SCHEMA)
    assert len(doc["log"]["entries"]) == len(SAMPLE_ROWS)


def test_unwritable_output_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An output path that cannot be written is a clear error, exit 2, no traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["export", str(DATA / "chrome.har"), "--har", str(blocker / "out.har")])
    assert code == 2
    assert "cannot write" in capsys.readouterr().err
