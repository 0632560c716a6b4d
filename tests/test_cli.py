"""The command line parses and every subcommand has --help."""

from __future__ import annotations

import pytest

from auditproxy.cli import COMMANDS, main


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`auditproxy NAME --help` prints usage and exits 0."""
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"auditproxy {name}" in capsys.readouterr().out
