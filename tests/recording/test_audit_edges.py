"""`auditproxy audit` where a new user trips: CI formats (JUnit against the Jenkins
xUnit schema, SARIF rule metadata), empty and binary input, browser HARs with failed
requests and secrets, directories, and the text format's SOURCE column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from auditproxy.cli import main
from tests.recording.factories import DATA

JUNIT_XSD = xmlschema.XMLSchema(str(DATA / "junit-10.xsd"))
DATE = {"name": "Date", "value": "Mon, 03 Jun 2024 07:33:20 GMT"}
TOKEN = "s3cr3t-t0ken-value"


def entry(status: int, method: str = "GET", headers: list[dict[str, str]] | None = None,
          url: str = "http://api.test/orders/1", req_headers: list[dict[str, str]] | None = None,
          ) -> dict[str, Any]:  # fmt: skip
    return {
        "startedDateTime": "2024-06-03T07:33:20.000Z", "time": 12.5,
        "request": {"method": method, "url": url, "headers": req_headers or []},
        "response": {"status": status, "headers": headers or [], "content": {"size": 0}},
    }  # fmt: skip


def jsonl(path: Path, *entries: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def har(path: Path, *entries: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "browser"},
                                        "entries": list(entries)}}))  # fmt: skip
    return path


# --------------------------------------------------------------------------- item 9


def test_junit_validates_against_the_jenkins_xunit_schema(tmp_path: Path) -> None:
    """Errors and time attributes are present, and an exchange with two failing findings
    is one testcase with one <failure> naming both."""
    rec = jsonl(tmp_path / "r.jsonl", entry(405, "DELETE"), entry(200, headers=[DATE]))
    out = tmp_path / "junit.xml"
    assert main(["audit", "--format", "junit", "-o", str(out), str(rec)]) == 1
    JUNIT_XSD.validate(str(out))
    doc = JUNIT_XSD.to_dict(str(out))
    suite = doc["testsuite"][0]
    assert (suite["@tests"], suite["@failures"], suite["@errors"]) == ("2", "1", "0")
    failing = suite["testcase"][0]
    assert len(failing["failure"]) == 1
    text = failing["failure"][0]["$"]
    assert "RFC9110-405-ALLOW (must)" in text
    assert "RFC9110-DATE-PRESENT (must)" in text
    assert failing["@time"] == "0.013"


def test_sarif_rules_carry_descriptions_and_help(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every SARIF rule has its catalog text as short/full description and a helpUri."""
    rec = jsonl(tmp_path / "r.jsonl", entry(405, "DELETE"))
    main(["audit", "--format", "sarif", str(rec)])
    rules = {
        r["id"]: r
        for r in json.loads(capsys.readouterr().out)["runs"][0]["tool"]["driver"]["rules"]
    }
    allow = rules["RFC9110-405-ALLOW"]
    assert allow["shortDescription"]["text"] == "405 Method Not Allowed without an Allow header."
    assert "Source: RFC 9110 §15.5.6" in allow["fullDescription"]["text"]
    assert allow["helpUri"] == "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.6"
    for rule in rules.values():
        assert rule["shortDescription"]["text"] != rule["id"]
        assert rule["helpUri"].startswith("https://")


# -------------------------------------------------------------------------- item 10


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_no_exchanges_is_exit_2_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    """An empty or blank file (and /dev/null) cannot pass a gate: exit 2 with a clear line."""
    rec = tmp_path / "empty.jsonl"
    rec.write_text(content)
    for path in (str(rec), "/dev/null"):
        assert main(["audit", path]) == 2
        assert "no exchanges to audit" in capsys.readouterr().err
        assert main(["audit", "--allow-empty", path]) == 0


def test_a_binary_file_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A binary file (and a text file that is not JSON Lines) is named once, not per line."""
    blob = tmp_path / "image.jsonl"
    blob.write_bytes(bytes(range(256)) * 64 + b"\n" * 700)
    text = tmp_path / "notes.jsonl"
    text.write_text("".join(f"line {i} is prose\n" for i in range(700)))
    assert main(["audit", "--allow-empty", str(blob), str(text)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "unreadable" not in line]
    assert len(lines) == 2
    assert lines[0].startswith(f"auditproxy audit: {blob}: not a JSON Lines recording or HAR")
    assert lines[1].startswith(f"auditproxy audit: {text}: not a JSON Lines recording")


def test_messages_name_json_types(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A line holding null or a list is described in JSON's words."""
    rec = tmp_path / "r.jsonl"
    no_status = entry(200)
    no_status["response"]["status"] = None
    rec.write_text(json.dumps(entry(200, headers=[DATE])) + "\nnull\n[1]\n"
                   + json.dumps(no_status) + "\n")  # fmt: skip
    assert main(["audit", str(rec)]) == 2
    err = capsys.readouterr().err
    assert "response.status null is not an integer" in err
    assert "line is a JSON null, not a HAR entry object" in err
    assert "line is a JSON array" in err
    assert "NoneType" not in err
    assert "list" not in err


def test_browser_status_0_is_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed browser request (status 0) is no finding: skipped, counted on stderr."""
    doc = har(tmp_path / "b.har", entry(0), entry(200, headers=[DATE]), entry(0))
    code = main(["audit", "--format", "json", str(doc)])
    captured = capsys.readouterr()
    assert code == 0
    assert json.loads(captured.out)["summary"]["exchanges"] == 1
    assert "skipped 2 entries with status 0" in captured.err


@pytest.mark.parametrize("fmt", ["text", "json", "junit", "sarif", "markdown"])
def test_secrets_of_a_foreign_har_are_redacted_in_every_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """A query token and an Authorization header from a browser HAR appear in no format
    (and not in an export of it)."""
    leaky = entry(405, "DELETE", url=f"http://api.test/orders/1?access_token={TOKEN}&page=2",
                  req_headers=[{"name": "Authorization", "value": f"Bearer {TOKEN}"}])  # fmt: skip
    leaky["response"]["headers"] = [{"name": "WWW-Authenticate", "value": "Bearer"}, DATE]
    doc = har(tmp_path / "b.har", leaky)
    main(["audit", "--format", fmt, str(doc)])
    out = capsys.readouterr().out
    assert "RFC9110-405-ALLOW" in out
    assert TOKEN not in out
    if fmt == "json":
        assert "access_token=REDACTED&page=2" in out
    exported = tmp_path / "e.har"
    assert main(["export", str(doc), "--har", str(exported)]) == 0
    assert TOKEN not in exported.read_text()


def test_text_source_column_is_not_cut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A long path shows in full with its line number in the text table."""
    deep = tmp_path / ("very-long-folder-name-" * 4)
    deep.mkdir()
    rec = jsonl(deep / "recording-with-a-long-name.jsonl", entry(200, headers=[DATE]))
    main(["audit", str(rec)])
    assert f"{rec}:1 " in capsys.readouterr().out


def test_a_directory_is_every_recording_under_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit DIR` reads worker-N/ subfolders recursively in time order, skips other files."""
    (tmp_path / "worker-0").mkdir()
    (tmp_path / "worker-1").mkdir()
    late = jsonl(tmp_path / "worker-0" / "auditproxy-20240603T080000-p1-000001.jsonl",
                 entry(204, "DELETE", headers=[DATE]))  # fmt: skip
    early = jsonl(tmp_path / "worker-1" / "auditproxy-20240603T070000-p2-000001.jsonl",
                  entry(200, headers=[DATE]))  # fmt: skip
    (tmp_path / "proxy.log").write_text("not a recording\n")
    code = main(["audit", "--format", "json", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [e["source"] for e in doc["exchanges"]] == [f"{early}:1", f"{late}:1"]
    assert main(["export", str(tmp_path), "--har", str(tmp_path / "all.har")]) == 0
    assert len(json.loads((tmp_path / "all.har").read_text())["log"]["entries"]) == 2
