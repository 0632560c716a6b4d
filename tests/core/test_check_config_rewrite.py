"""`auditproxy check-config` prints the effective rewrite policy and refuses bad rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from auditproxy.cli import main

from .test_rewrite import SPEC_EXAMPLE


def _check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    f = tmp_path / "auditproxy.yaml"
    f.write_text("upstream: http://127.0.0.1:8000\n" + text, encoding="utf-8")
    code = main(["check-config", str(f)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _policy(out: str) -> Any:
    """The rewrite policy section of the output (YAML under the comment marks)."""
    lines = [line[2:] for line in out.splitlines() if line.startswith("# ")]
    start = next(i for i, line in enumerate(lines) if line.startswith("rewrite policy ("))
    return yaml.safe_load("\n".join(lines[start + 1 :]))


def test_prints_rules_in_order_with_match_and_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each rule in order with its match, its action and arguments, dry run and body
    needs marked; the annotate mode; and stdout still loads as the same config."""
    code, out, _ = _check(tmp_path, "annotate: request\n" + SPEC_EXAMPLE, capsys)
    assert code == 0
    policy = _policy(out)
    assert policy["annotate"] == (
        "request (X-Audit-Findings only for requests carrying X-Audit-Debug: 1)"
    )
    rules = policy["rewrite"]
    assert [r["rule"] for r in rules] == ["location-for-created", "allow-on-405", "no-powered-by",
                                          "no-store", "cors-allowlist", "empty-delete"]  # fmt: skip
    assert rules[0] == {
        "rule": "location-for-created",
        "when": {"routes": ["/orders"], "methods": ["POST"], "status": [201],
                 "finding": ["ARP.03.LOCATION-201"]},
        "then": {"location_from_body": {"field": "id", "template": "/orders/{id}"}},
        "body": "needed (skipped when the proxy did not hold all of it)",
    }  # fmt: skip
    assert rules[2] == {"rule": "no-powered-by", "when": "always",
                        "then": {"remove_header": ["X-Powered-By", "Server"]}}  # fmt: skip
    assert rules[5]["dry_run"] == "evaluated and counted, not applied"
    assert all("dry_run" not in r for r in rules[:5])
    config = yaml.safe_load(out)
    assert config["annotate"] == "request"
    assert config["rewrite"] == yaml.safe_load(SPEC_EXAMPLE)["rewrite"]


def test_no_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without rules the policy says so, with the default annotate mode."""
    code, out, _ = _check(tmp_path, "", capsys)
    assert code == 0
    assert _policy(out) == {"annotate": "false (no X-Audit-Findings)", "rewrite": "none"}


def test_bad_rule_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rule error is one line naming the file, the rule, the key and the value; exit 2."""
    code, out, err = _check(
        tmp_path, "rewrite:\n  - {name: x, match: {finding: NOPE}, remove_header: Server}\n", capsys
    )
    assert code == 2
    assert out == ""
    (line,) = err.strip().splitlines()
    assert str(tmp_path / "auditproxy.yaml") in line
    assert "rewrite[0] (x).match.finding: got 'NOPE'" in line
