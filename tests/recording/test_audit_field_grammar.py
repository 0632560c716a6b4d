"""Offline audit keeps every field line: a browser HAR whose response sends Date on two
lines (the second broken) and a WWW-Authenticate with no challenge gets the same
findings from `auditproxy audit` as the live proxy gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditproxy.cli import main
from tests.recording.test_audit_edges import DATE, entry, har


def test_repeated_lines_are_judged_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both Date lines of the HAR reach the engine, and the 401 has no challenge."""
    row = entry(401, headers=[DATE, {"name": "Date", "value": "yesterday"},
                              {"name": "WWW-Authenticate", "value": 'realm="api"'}])  # fmt: skip
    main(["audit", "--format", "json", str(har(tmp_path / "b.har", row))])
    found = {f["rule"]: f for f in json.loads(capsys.readouterr().out)["exchanges"][0]["findings"]}
    assert "yesterday" in found["RFC9110-DATE-FORMAT"]["message"]
    assert found["RFC9110-SINGLETON-REPEATED"]["header"] == "Date"
    assert "RFC9110-401-WWW-AUTHENTICATE" in found
