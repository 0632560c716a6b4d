"""Settings: defaults, file, env and flags precedence; errors name file, key and value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from auditproxy.core.errors import ConfigError
from auditproxy.settings import dump_yaml, load_settings, parse_duration, parse_size

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("5s", 5.0), ("2m", 120.0), ("1h", 3600.0), ("1.5s", 1.5), (3, 3.0)],
)
def test_durations(text: object, seconds: float) -> None:
    """Duration strings parse to seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"),
    [("512", 512), (512, 512), ("64KiB", 65536), ("10MiB", 10 * 1024**2), ("1KB", 1000)],
)
def test_sizes(text: object, size: int) -> None:
    """Size strings parse to bytes."""
    assert parse_size(text) == size


def test_upstream_flag_alone_is_enough() -> None:
    """`serve --upstream URL` works with no file: every other key has a default."""
    s = load_settings(None, env={}, flags={"upstream": "http://127.0.0.1:8000"})
    assert s.upstream == "http://127.0.0.1:8000"
    assert s.timeouts.connect == 2.0
    assert s.limits.max_request_body == 10 * 1024**2


def test_env_overrides_file_and_flags_override_env(tmp_path: Path) -> None:
    """File < AUDITPROXY_* env < flags."""
    f = tmp_path / "c.yaml"
    f.write_text("upstream: http://a:1\nlisten: 127.0.0.1:1000\nlog: {level: warning}\n")
    env = {"AUDITPROXY_LISTEN": "127.0.0.1:2000", "AUDITPROXY_UPSTREAM": "http://b:2",
           "AUDITPROXY_LOG_LEVEL": "debug", "AUDITPROXY_RECORD_DIR": "/tmp/rec"}  # fmt: skip
    s = load_settings(str(f), env=env, flags={"upstream": "http://c:3"})
    assert s.listen.port == 2000
    assert s.upstream == "http://c:3"
    assert s.log.level == "debug"
    assert s.record.enabled
    assert s.record.dir == "/tmp/rec"


@pytest.mark.parametrize(
    ("yaml_text", "where", "value"),
    [
        ("upstream: http://a:1\nlisten2: x\n", "listen2", "unknown key"),
        ("upstream: http://a:1\ntimeouts: {connect: 5 seconds}\n", "timeouts.connect", "5 seconds"),
        ("upstream: ftp://a\n", "upstream", "ftp://a"),
        ("upstream: http://a:1\nlimits: {max_request_body: 10 MB pls}\n",
         "limits.max_request_body", "10 MB pls"),
        ("upstream: http://a:1\nadmin: 'localhost:99999'\n", "admin", "localhost:99999"),
        ("upstream: http://a:1\nrecord: {on_full: wait}\n", "record.on_full", "wait"),
        ("routes: [{prefix: /a}]\n", "routes[0].upstream", "missing"),
        ("listen: 127.0.0.1:1\n", "upstream", "missing"),
    ],
)  # fmt: skip
def test_bad_values_name_file_key_and_value(
    tmp_path: Path, yaml_text: str, where: str, value: str
) -> None:
    """A bad value raises ConfigError naming the file, the key and the value."""
    f = tmp_path / "bad.yaml"
    f.write_text(yaml_text)
    with pytest.raises(ConfigError) as exc:
        load_settings(str(f), env={})
    assert exc.value.source == str(f)
    assert exc.value.where == where
    assert value in str(exc.value)


def test_bad_env_value_names_the_variable() -> None:
    """A bad env value names the env var as the source."""
    with pytest.raises(ConfigError) as exc:
        load_settings(
            None, env={"AUDITPROXY_TIMEOUTS_IDLE": "soon"}, flags={"upstream": "http://a:1"}
        )
    assert "AUDITPROXY_TIMEOUTS_IDLE" in exc.value.source
    assert "'soon'" in str(exc.value)


def test_example_config_is_valid_and_round_trips(tmp_path: Path) -> None:
    """The shipped example config validates, and its effective dump loads back the same."""
    s = load_settings(str(REPO / "config" / "auditproxy.yaml"), env={})
    dumped = tmp_path / "eff.yaml"
    dumped.write_text(dump_yaml(s))
    again = load_settings(str(dumped), env={})
    assert dump_yaml(again) == dump_yaml(s)


def _check_config(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditproxy", "check-config", str(path)],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    """Latin-1 bytes are exit 2 naming the file and the byte, not a Python error."""
    f = tmp_path / "latin1.yaml"
    f.write_bytes("upstream: http://a:1\n# s\xe4kerhet\n".encode("latin-1"))
    proc = _check_config(f)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"auditproxy: config error: {f}: byte 24: not UTF-8 text (invalid continuation "
        "byte); save the file as UTF-8"
    )


def test_an_unknown_auditproxy_variable_warns_with_the_closest_name(tmp_path: Path) -> None:
    """A misspelt AUDITPROXY_* variable is not ignored silently."""
    f = tmp_path / "ok.yaml"
    f.write_text("upstream: http://a:1\n")
    proc = _check_config(f, AUDITPROXY_TIMEOUT_CONNECT="1s", AUDITPROXY_LISTEN="127.0.0.1:1")
    assert proc.returncode == 0
    assert proc.stderr.splitlines() == [
        "auditproxy: warning: environment variable AUDITPROXY_TIMEOUT_CONNECT matches no "
        "setting; did you mean AUDITPROXY_TIMEOUTS_CONNECT?"
    ]
    assert "listen: 127.0.0.1:1" in proc.stdout


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("upstream: http://a:1\nbogus: 1\n", "bogus: unknown key"),
        ("upstream: http://a:1\ntimeouts: {idle: 3 parsecs}\n",
         "timeouts.idle: got '3 parsecs', expected a duration"),
        ("upstream: not-a-url\n", "upstream: got 'not-a-url', expected an http:// or https:// URL"),
        ("upstream: http://a:1/api?tenant=7\n", "has a query string (?...); expected a base URL"),
        ("upstream: http://a:1\ntimeouts:\n  idle: 5s\n  idle: 9s\n",
         "line 4: invalid YAML: duplicate key 'idle' (first given at line 3)"),
        ("upstream: http://a:1\nupstream: http://b:2\n", "duplicate key 'upstream'"),
    ],
)  # fmt: skip
def test_check_config_exits_2_with_one_line(tmp_path: Path, yaml_text: str, expected: str) -> None:
    """`auditproxy check-config` prints one line naming file, key and value and exits 2."""
    f = tmp_path / "bad.yaml"
    f.write_text(yaml_text)
    proc = _check_config(f)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(f) in lines[0]
    assert expected in lines[0]
    assert "Traceback" not in proc.stderr


def test_check_config_prints_effective_config(tmp_path: Path) -> None:
    """A valid file prints the effective config (defaults filled in) and exits 0."""
    f = tmp_path / "ok.yaml"
    f.write_text("upstream: http://a:1\ntimeouts: {connect: 500ms}\n")
    proc = _check_config(f)
    assert proc.returncode == 0
    assert "connect: 500ms" in proc.stdout
    assert "shutdown_grace: 30s" in proc.stdout


def test_a_merge_key_may_still_be_overridden(tmp_path: Path) -> None:
    """`<<: *anchor` followed by one of its keys is YAML's override, not a duplicate."""
    from auditproxy.settings import read_config_file

    f = tmp_path / "m.yaml"
    f.write_text("a: &base {connect: 1s, idle: 2s}\nb:\n  <<: *base\n  connect: 3s\n")
    assert read_config_file(str(f))["b"] == {"connect": "3s", "idle": "2s"}
