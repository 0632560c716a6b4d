"""`auditproxy audit --format html` and the coverage outputs: contents, escaping, redaction,
the coverage gate and the wheel carrying the template."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from auditproxy.cli import main
from auditproxy.core.engine import Profile
from auditproxy.html_report import csp
from auditproxy.sinks.metrics import Metrics
from tests.recording.factories import SAMPLE_ROWS, SECRETS, record_sample_traffic

HOSTILE_PATH = "/orders/<script>alert(1)</script>"
HOSTILE_ID = '"><img src=x onerror=alert(2)>'


class Tags(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


def hostile_entry() -> str:
    return json.dumps({
        "startedDateTime": "2024-06-03T07:33:20.000Z", "time": 1,
        "request": {"method": "DELETE", "url": f"http://api.test{HOSTILE_PATH}", "headers": []},
        "response": {"status": 405, "headers": [], "content": {"size": 0}},
        "_audit": {"request_id": HOSTILE_ID, "route": HOSTILE_PATH},
    })  # fmt: skip


@pytest.fixture
async def recording(
    sample_upstream: str, tmp_path: Path, metrics: Metrics, profile: Profile
) -> Path:
    path, _ = await record_sample_traffic(sample_upstream, tmp_path / "rec", metrics, profile)
    return path


async def test_html_has_every_section_and_the_json_numbers(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The page carries the headline, a row per rule with source and example, the heat map,
    the timeline, the advice table, the coverage grid and the rule texts; its numbers are
    the JSON output's; no secret of the traffic is on it."""
    out = tmp_path / "report.html"
    assert main(["audit", "--format", "html", "-o", str(out), str(recording)]) == 1
    assert main(["audit", "--format", "json", str(recording)]) == 1
    doc = json.loads(capsys.readouterr().out)
    page = out.read_text("utf-8")
    tags = parse(page)
    ids = {a.get("id") for _, a in tags.tags}
    for section in ("findings", "heatmap", "timeline", "retry", "coverage", "rules"):
        assert section in ids, section
    s = doc["summary"]
    assert f'<div class="value" id="n-exchanges">{s["exchanges"]}</div>' in page
    assert f'<span id="n-compliant">{s["compliant"]}</span>' in page
    assert f'<span id="n-noncompliant">{s["noncompliant"]}</span>' in page
    assert s["exchanges"] == len(SAMPLE_ROWS)
    for rule, n in s["by_rule"].items():
        assert f"finding-{rule}" in ids
        assert f"rule-{rule}" in ids  # the link target exists
        assert f'<td class="num count">{n}</td>' in page.split(f'id="finding-{rule}"')[1][:400]
    assert "add-line-no-location" in page  # an example exchange's request id
    assert sum(1 for t, a in tags.tags if t == "rect" and "fill-must" in (a.get("class") or ""))
    for secret in SECRETS.values():
        assert secret not in page
    cov = doc["coverage"]
    assert ", ".join(cov["never"]["handling"]) in page
    assert f'<span class="exercised">{cov["summary"]["matrix"]["exercised"]}</span>' in page


def test_html_escapes_traffic_and_loads_nothing(tmp_path: Path) -> None:
    """Markup in a path or request id is text on the page; the page has no script, no
    external reference, and its CSP allows only its own style block."""
    p = tmp_path / "hostile.jsonl"
    p.write_text(hostile_entry() + "\n")
    out = tmp_path / "r.html"
    main(["audit", "--format", "html", "-o", str(out), str(p)])
    page = out.read_text("utf-8")
    tags = parse(page)
    names = {t for t, _ in tags.tags}
    assert not names & {"script", "img", "iframe", "object", "embed", "base", "form"}
    links = [a for t, a in tags.tags if t == "link"]
    assert links == [{"rel": "icon", "href": "data:,"}]  # so a browser asks for no favicon
    text = "".join(tags.text)
    assert HOSTILE_PATH in text
    assert HOSTILE_ID in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for _, attrs in tags.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), name
            if name in ("href", "src", "xlink:href"):
                assert (value or "").startswith(("#", "data:")), value
            assert name != "style"  # inline styles would need 'unsafe-inline'
    (meta,) = [a for t, a in tags.tags if t == "meta" and a.get("http-equiv")]
    assert meta["content"] == csp()
    assert csp().startswith("default-src 'none'; style-src 'sha256-")


def test_coverage_in_json_markdown_and_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON has the coverage object; Markdown and text have the coverage sections."""
    p = tmp_path / "one.jsonl"
    p.write_text(hostile_entry() + "\n")
    main(["audit", "--format", "json", str(p)])
    cov: dict[str, Any] = json.loads(capsys.readouterr().out)["coverage"]
    assert set(cov) == {"summary", "matrix", "handling", "rules", "never"}
    assert "DELETE 405" not in cov["never"]["matrix"]
    assert "GET 405" in cov["never"]["matrix"]
    main(["audit", "--format", "markdown", str(p)])
    md = capsys.readouterr().out
    assert "## Coverage of the ARP.02 matrix: 1 of " in md
    assert "- Never exercised handling rows: 1xx, 2xx, 301" in md
    main(["audit", str(p)])
    assert "Never exercised rules: RFC9110-STATUS-RANGE" not in capsys.readouterr().out


def test_fail_on_uncovered_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--fail-on-uncovered exits 1 and names what was never exercised; without it the same
    traffic passes --fail-on never."""
    p = tmp_path / "one.jsonl"
    p.write_text(hostile_entry() + "\n")
    assert main(["audit", "--fail-on", "never", "--format", "json", str(p)]) == 0
    capsys.readouterr()
    code = main(["audit", "--fail-on", "never", "--fail-on-uncovered", "rules",
                 "--fail-on-uncovered", "handling", "--format", "json", str(p)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "uncovered: " in err
    assert "enabled rules never exercised: " in err
    assert "RFC9110-405-ALLOW" not in err  # checked on the 405
    assert "handling table rows never exercised: 1xx, 2xx, " in err
    assert "ARP.02 matrix cells" not in err  # not asked for
    with pytest.raises(SystemExit) as exc:
        main(["audit", "--fail-on-uncovered", "everything", str(p)])
    assert exc.value.code == 2


def test_empty_and_profileless_reports_render(profile: Profile) -> None:
    """No exchanges, or no profile: the page still renders and says what is missing."""
    from auditproxy.core.report import Report
    from auditproxy.html_report import render_html

    empty = render_html(Report(profile).as_dict(), profile)
    assert '<div class="value" id="n-exchanges">0</div>' in empty
    assert "No findings." in empty
    assert "No start times recorded." in empty
    assert 'id="rule-RFC9110-405-ALLOW"' in empty  # the rule texts are there all the same
    bare = render_html(Report().as_dict(), None)
    assert "No profile: nothing to cover." in bare
    assert "No profile loaded." in bare
