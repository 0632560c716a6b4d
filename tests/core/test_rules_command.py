"""`auditproxy rules`: the catalog in text, JSON and Markdown; config overrides applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditproxy.cli import main

from .test_engine import DIGG_RUNTIME_RULES, GRAMMAR_RULES, SPEC_RULES


def test_json_lists_every_spec_rule(capsys: pytest.CaptureFixture[str]) -> None:
    """--format json lists every SPEC §6 rule and every DIGG run-time rule with its
    source and severity; every row, enabled or not, names its source."""
    assert main(["rules", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["profile"], doc["version"]) == ("digg", "1.2.0")
    rows = {r["id"]: r for r in doc["rules"]}
    assert all(r["source"] for r in doc["rules"])
    for rid, severity in (SPEC_RULES | DIGG_RUNTIME_RULES | GRAMMAR_RULES).items():
        assert rows[rid]["severity"] == severity
        assert rows[rid]["source"]
        assert rows[rid]["enabled"] is True


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_text_and_markdown(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The text and Markdown listings name every rule."""
    assert main(["rules", "--format", fmt]) == 0
    out = capsys.readouterr().out
    for rid in SPEC_RULES | DIGG_RUNTIME_RULES | GRAMMAR_RULES:
        assert rid in out


def test_config_overrides_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--config applies the file's rules: overrides to the listing."""
    cfg = tmp_path / "auditproxy.yaml"
    cfg.write_text("profile: digg\nrules:\n  RFC9110-503-RETRY-AFTER: {severity: should}\n"
                   "  ARP.01.CORS-WILDCARD: {enabled: false}\n", encoding="utf-8")  # fmt: skip
    assert main(["rules", "--format", "json", "--config", str(cfg)]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["rules"]}
    assert rows["RFC9110-503-RETRY-AFTER"]["severity"] == "should"
    assert rows["ARP.01.CORS-WILDCARD"]["enabled"] is False


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown rule id in the config exits 2 naming file, key and value, no traceback."""
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("rules:\n  NOPE: {enabled: false}\n", encoding="utf-8")
    assert main(["rules", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}: rules.NOPE: got" in err
    assert "Traceback" not in err
