"""A relative profile folder in a config file is found relative to that file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import auditproxy.profiles
from auditproxy.cli import main


def test_relative_profile_is_relative_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`profile: myprofile` next to the config loads from any working directory."""
    shutil.copytree(Path(auditproxy.profiles.__file__).parent / "digg", tmp_path / "myprofile")
    cfg = tmp_path / "auditproxy.yaml"
    cfg.write_text("upstream: http://127.0.0.1:8000\nprofile: myprofile\n", encoding="utf-8")
    monkeypatch.chdir(Path("/"))
    assert main(["check-config", str(cfg)]) == 0
    assert str(tmp_path / "myprofile") in capsys.readouterr().out
    assert main(["rules", "--config", str(cfg)]) == 0
    assert "ARP.03.LOCATION-201" in capsys.readouterr().out
