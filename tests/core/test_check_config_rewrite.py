"""`auditproxy check-config` prints the effective rewrite policy and refuses bad rules."""

from __future__ import annotations

from pathlib import Path

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


def test_prints_rules_in_order_with_match_and_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each rule in order with its match, its action and arguments, dry run and body
    needs marked; the annotate mode; and stdout still loads as YAML."""
    code, out, _ = _check(tmp_path, "annotate: request\n" + SPEC_EXAMPLE, capsys)
    assert code == 0
    policy = out[out.index("# rewrite policy") :].splitlines()
    assert (
        "# annotate: request (X-Audit-Findings only for requests carrying X-Audit-Debug: 1)"
        in policy
    )
    names = [line.split()[2] for line in policy if line.startswith("# rewrite[")]
    assert names == ["location-for-created", "allow-on-405", "no-powered-by", "no-store",
                     "cors-allowlist", "empty-delete"]  # fmt: skip
    first = policy.index("# rewrite[0] location-for-created")
    assert policy[first + 1] == (
        "#   when: routes=/orders methods=POST status=201 finding=ARP.03.LOCATION-201"
    )
    assert policy[first + 2] == (
        "#   then: location_from_body: {field: id, template: '/orders/{id}'}; "
        "needs the whole body, skipped when it was streamed"
    )
    assert "#   when: every response" in policy
    assert "#   then: remove_header: [X-Powered-By, Server]" in policy
    assert "# rewrite[5] empty-delete (dry run: evaluated and counted, not applied)" in policy
    assert yaml.safe_load(out)["annotate"] == "request"


def test_no_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without rules the policy says so, with the default annotate mode."""
    code, out, _ = _check(tmp_path, "", capsys)
    assert code == 0
    assert "# rewrite: none (responses pass unchanged)" in out
    assert "# annotate: false (no X-Audit-Findings)" in out


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
