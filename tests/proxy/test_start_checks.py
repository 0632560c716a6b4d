"""`auditproxy serve` refuses a start that cannot work: exit 2 with one line naming the
recording folder or the busy address, and no empty recording file left behind (by
`serve` or `demo`)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The real command; a start that wrongly succeeds is stopped and fails the test."""
    try:
        return subprocess.run([sys.executable, "-m", "auditproxy", *args],
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{args}: still running after {timeout}s (it started)") from exc


@pytest.fixture
def busy() -> Iterator[int]:
    """A port something is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def jsonl_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.jsonl")) if folder.exists() else []


def test_unwritable_record_dir_is_exit_2_naming_it(tmp_path: Path) -> None:
    """`--record DIR` that cannot hold files stops the start (even as root: DIR lies
    under a regular file)."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    target = blocker / "rec"
    r = run("serve", "--upstream", "http://127.0.0.1:9", "--listen", "127.0.0.1:0",
            "--admin", "127.0.0.1:0", "--record", str(target), timeout=15)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert f"--record: cannot write recordings to {target}: Not a directory" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("which", ["listen", "admin"])
def test_busy_port_is_exit_2_naming_the_address(tmp_path: Path, busy: int, which: str) -> None:
    """A port in use is exit 2 naming --listen or --admin and the port; the recording
    folder holds no empty file afterwards."""
    other = "admin" if which == "listen" else "listen"
    rec = tmp_path / "rec"
    r = run("serve", "--upstream", "http://127.0.0.1:9", f"--{which}", f"127.0.0.1:{busy}",
            f"--{other}", f"127.0.0.1:{free_port()}", "--record", str(rec))  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert f"--{which}: cannot listen on 127.0.0.1:{busy}: port {busy} is already in use" in (
        r.stderr
    )
    assert jsonl_files(rec) == []


def test_busy_port_from_the_config_file_names_the_key(tmp_path: Path, busy: int) -> None:
    """An address from the config file is named by its key and the file, for --workers too."""
    config = tmp_path / "c.yaml"
    config.write_text(f"upstream: http://127.0.0.1:9\nlisten: 127.0.0.1:{busy}\n"
                      f"admin: 127.0.0.1:{free_port()}\n")  # fmt: skip
    for extra in ((), ("--workers", "2")):
        r = run("serve", "--config", str(config), *extra)
        assert r.returncode == 2, r.stderr
        assert f"{config}: listen: cannot listen on 127.0.0.1:{busy}" in r.stderr


def test_demo_on_a_busy_port_leaves_no_empty_recording(tmp_path: Path, busy: int) -> None:
    """The demo's proxy fails to bind after its recorder opened a file: the file goes."""
    rec = tmp_path / "demo"
    r = run("demo", "--once", "--port", str(busy), "--record-dir", str(rec))
    assert r.returncode == 2, r.stderr
    assert "--port" in r.stderr
    assert jsonl_files(rec) == []
