"""What users read: --help states defaults and exit codes; reports, rule listings and
admin answers speak plainly (no internal source names, Unused 418 said as the IANA
registry says it, every handling cell filled, RFC 3339 times)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

JARGON = ("seed 0", "row reconstructed", "common set")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auditproxy", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.parametrize(
    ("command", "defaults"),
    [
        ("audit", ["(default: text)", "(default: must)", "(default: -, standard output)"]),
        ("replay", ["(default: 8)", "(default: 10s)", "(default: no limit)"]),
        ("export", ["(required; - for standard output)"]),
    ],
)
def test_help_states_defaults_and_exit_codes(command: str, defaults: list[str]) -> None:
    out = cli(command, "--help").stdout
    assert "exit codes:" in out
    assert re.search(r"^\s+2\s+unreadable input", out, re.MULTILINE)
    for text in defaults:
        assert text in " ".join(out.split())


def _audit_text(tmp_path: Path, statuses: list[int]) -> str:
    date = {"name": "Date", "value": "Mon, 03 Jun 2024 07:33:20 GMT"}
    rec = tmp_path / "r.jsonl"
    rec.write_text("".join(json.dumps({
        "startedDateTime": "2024-06-03T07:33:20.000Z", "time": 1,
        "request": {"method": "GET", "url": "http://api.test/orders/1", "headers": []},
        "response": {"status": s, "headers": [date], "content": {"size": 0}},
    }) + "\n" for s in statuses))  # fmt: skip
    return cli("audit", "--fail-on", "never", str(rec)).stdout


def test_reports_and_rule_listings_speak_plainly(tmp_path: Path) -> None:
    """No internal names in `rules` (every format) or an audit report; BÖR only with
    what it means."""
    texts = [cli("rules", "--format", f).stdout for f in ("text", "json", "markdown")]
    texts.append(_audit_text(tmp_path, [402, 418, 299, 200, 201]))
    for text in texts:
        assert text
        for word in JARGON:
            assert word not in text
        for m in re.finditer("BÖR", text):
            assert re.match(r'\\?" in the Swedish', text[m.end() : m.end() + 20])


def test_418_is_called_unused_and_every_handling_cell_is_filled(tmp_path: Path) -> None:
    report = _audit_text(tmp_path, [418, 422])
    assert "Status 418 is registered as Unused in the IANA registry" in report
    assert "nor the IANA registry" not in report.split("Per route")[0].split("418")[1][:200]
    advice = report.split("Retry advice per status")[1].split("Coverage of")[0]
    rows = [line for line in advice.splitlines() if re.match(r"^\d{3}\s", line)]
    assert len(rows) == 2
    assert all(len(re.split(r"\s{2,}", row.strip())) == 3 for row in rows), rows
    assert "no row for 418 in the handling table" in advice
