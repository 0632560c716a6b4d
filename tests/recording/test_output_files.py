"""Output files of `export --har`, `audit -o` and `replay -o`: replaced atomically only
when they are regular files (or new), written through otherwise, never over an input."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from auditproxy.cli import main
from tests.recording.factories import DATA, SAMPLE_ROWS

CHROME = DATA / "chrome.har"


def read_fifo_in_background(path: Path) -> tuple[threading.Thread, list[bytes]]:
    got: list[bytes] = []

    def reader() -> None:
        with open(path, "rb") as fh:
            got.append(fh.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread, got


@pytest.mark.parametrize("command", ["export", "audit"])
def test_a_fifo_is_written_through_not_replaced(tmp_path: Path, command: str) -> None:
    """The document goes into the FIFO's reader; the FIFO is still a FIFO afterwards."""
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    thread, got = read_fifo_in_background(fifo)
    if command == "export":
        assert main(["export", str(CHROME), "--har", str(fifo)]) == 0
    else:
        args = ["audit", "--format", "json", "--fail-on", "never", "-o", str(fifo), str(CHROME)]
        assert main(args) == 0
    thread.join(10)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    doc = json.loads(got[0])
    assert doc["log"]["entries"] if command == "export" else doc["summary"]["exchanges"]


def test_a_character_device_is_written_through(tmp_path: Path) -> None:
    """A device node (here one like /dev/full, made in tmp) is never replaced by a file;
    the device's own error is reported, exit 2."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    node = tmp_path / "full"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    code = main(["export", str(CHROME), "--har", str(node)])
    assert code == 2
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_a_symlink_stays_a_symlink(tmp_path: Path) -> None:
    """A link to a regular file: the file it points at is replaced, the link kept."""
    real = tmp_path / "real.har"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "link.har"
    link.symlink_to(real)
    assert main(["export", str(CHROME), "--har", str(link)]) == 0
    assert link.is_symlink()
    assert len(json.loads(real.read_text())["log"]["entries"]) == len(SAMPLE_ROWS)
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_dash_is_standard_output(capsys: pytest.CaptureFixture[str]) -> None:
    """`--har -` writes the HAR to standard output and creates no file named -."""
    assert main(["export", str(CHROME), "--har", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["log"]["version"] == "1.2"
    assert not Path("-").exists()


def test_export_refuses_to_overwrite_its_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`export x.jsonl --har x.jsonl` is refused (exit 2); the recording is unchanged."""
    rec = tmp_path / "x.jsonl"
    line = json.dumps({"startedDateTime": "2024-06-03T07:33:20.000Z", "time": 1,
                       "request": {"method": "GET", "url": "http://a/", "headers": []},
                       "response": {"status": 200, "headers": []}})  # fmt: skip
    rec.write_text(line + "\n")
    before = rec.read_bytes()
    assert main(["export", str(rec), "--har", str(rec)]) == 2
    assert "refusing to write" in capsys.readouterr().err
    assert rec.read_bytes() == before
    # The same file through another name (a directory argument, a symlink) too.
    alias = tmp_path / "alias.jsonl"
    alias.symlink_to(rec)
    assert main(["export", str(tmp_path), "--har", str(alias)]) == 2
    assert rec.read_bytes() == before


def test_audit_and_replay_refuse_to_overwrite_their_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit -o` and `replay -o` naming an input file are refused before anything runs."""
    har = tmp_path / "in.har"
    har.write_bytes(CHROME.read_bytes())
    assert main(["audit", "-o", str(har), str(har)]) == 2
    assert main(["replay", str(har), "--target", "http://127.0.0.1:9", "-o", str(har)]) == 2
    assert capsys.readouterr().err.count("refusing to write") == 2
    assert har.read_bytes() == CHROME.read_bytes()
