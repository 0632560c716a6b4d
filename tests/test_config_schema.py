"""The config file's JSON Schema: `auditproxy config-schema` prints it, the committed
copy is that output, every shipped config validates against it, and it refuses what
the loader refuses with the loader's own precise message."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from auditproxy.core.errors import ConfigError
from auditproxy.settings import load_settings
from auditproxy.settings_values import parse_duration, parse_host_port, parse_size

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "config" / "auditproxy.schema.json"


def _command_output() -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "auditproxy", "config-schema"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return proc.stdout


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(_command_output())
    jsonschema.Draft202012Validator.check_schema(doc)
    return doc


def _errors(schema: dict[str, Any], doc: object) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]


def test_the_committed_schema_is_the_command_output() -> None:
    """config/auditproxy.schema.json is `auditproxy config-schema` as it is now."""
    assert SCHEMA_FILE.read_text("utf-8") == _command_output(), (
        "regenerate it: auditproxy config-schema > config/auditproxy.schema.json"
    )


def test_the_example_config_points_editors_at_the_schema() -> None:
    """The YAML language server's modeline on the first line names the committed file."""
    example = ROOT / "config" / "auditproxy.yaml"
    first = example.read_text("utf-8").splitlines()[0]
    m = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert m, first
    assert (example.parent / m.group(1)).resolve() == SCHEMA_FILE


def _container_configs() -> list[Path]:
    """The files the Dockerfile copies to /etc/auditproxy, and any that
    docker-compose mounts there."""
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    copied = re.findall(r"^COPY (\S+\.ya?ml) /etc/auditproxy/", dockerfile, re.M)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    mounted = [
        v.split(":")[0]
        for service in compose["services"].values()
        for v in service.get("volumes", [])
        if isinstance(v, str) and ":/etc/auditproxy" in v
    ]
    return [ROOT / p for p in copied + mounted]


def _sidecar_configs() -> list[tuple[str, str]]:
    docs = yaml.safe_load_all((ROOT / "config/kubernetes/sidecar.yaml").read_text("utf-8"))
    return [
        (f"sidecar.yaml ConfigMap {d['metadata']['name']} {key}", text)
        for d in docs
        if d and d.get("kind") == "ConfigMap"
        for key, text in d["data"].items()
        if key.endswith((".yaml", ".yml"))
    ]


def _shipped_configs() -> list[tuple[str, str]]:
    files = sorted({*(ROOT / "config").glob("*.yaml"), *_container_configs()})
    return [(str(f.relative_to(ROOT)), f.read_text("utf-8")) for f in files] + _sidecar_configs()


def test_every_shipped_config_is_found() -> None:
    names = [name for name, _ in _shipped_configs()]
    assert "config/auditproxy.yaml" in names
    assert "config/docker/auditproxy.yaml" in names
    assert any(n.startswith("sidecar.yaml ConfigMap") for n in names)


@pytest.mark.parametrize(("name", "text"), _shipped_configs(), ids=lambda v: v.split(" ")[0])
def test_every_shipped_config_validates_against_the_schema(
    schema: dict[str, Any], tmp_path: Path, name: str, text: str
) -> None:
    """The example, the container's and the Kubernetes sidecar's config pass the
    schema, and the loader agrees."""
    assert _errors(schema, yaml.safe_load(text)) == []
    f = tmp_path / "c.yaml"
    f.write_text(text, encoding="utf-8")
    load_settings(str(f), env={})


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("timeouts: {conect: 2s}", "timeouts.conect",
         "unknown key, expected one of client_header, client_read, connect, idle, "
         "response_headers, shutdown_grace, total"),
        ("listen2: x", "listen2", "unknown key"),
        ("config_file: x.yaml", "config_file", "unknown key, expected one of admin, annotate,"),
        ("timeouts: {idle: 3 parsecs}", "timeouts.idle",
         "got '3 parsecs', expected a duration like 250ms, 5s or 2m"),
        ("limits: {max_request_body: 10 MB pls}", "limits.max_request_body",
         "got '10 MB pls', expected a size like 512, 64KiB or 10MiB"),
        ("limits: {max_connections: many}", "limits.max_connections",
         "got 'many', expected an integer >= 1"),
        ("record: {on_full: wait}", "record.on_full", "got 'wait', expected one of drop, block"),
        ("record: {sample: 2}", "record.sample", "got 2, expected a number between 0 and 1"),
        ("admin: 'localhost:99999'", "admin", "got 'localhost:99999', expected host:port"),
        ("retry: {max_attempts: 11}", "retry.max_attempts",
         "got 11, expected an integer >= 1 and <= 10"),
        ("retry: {statuses: {must: [999]}}", "retry.statuses.must",
         "got [999], expected a list of status codes (100-599)"),
        ("retry: 5", "retry", "got 5, expected a mapping"),
        ("annotate: sometimes", "annotate", "got 'sometimes', expected true, false or request"),
        ("routes: [{prefix: /a}]", "routes[0].upstream", "missing, expected a URL"),
        ("routes: [{prefix: a, upstream: 'http://b:1'}]", "routes[0].prefix",
         "got 'a', expected a path starting with /"),
        ("routes: [{prefix: /a, upstream: 'http://b:1', retry: {tries: 2}}]",
         "routes[0].retry.tries", "unknown key"),
        ("rules: {X: {severity: sometimes}}", None, None),
    ],
)  # fmt: skip
def test_a_wrong_key_or_type_is_refused_by_both_with_the_precise_message(
    schema: dict[str, Any], tmp_path: Path, text: str, where: str | None, what: str | None
) -> None:
    """The schema refuses what the loader refuses, and the loader's message names
    the file, the key and the value as before."""
    doc = yaml.safe_load("upstream: http://a:1\n" + text)
    assert _errors(schema, doc)
    if where is None:
        return  # checked when the profile is loaded, not by the settings
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings(str(f), env={})
    assert (exc.value.source, exc.value.where) == (str(f), where)
    assert what is not None
    assert exc.value.what.startswith(what)


def _accepts(parse: Any, value: object) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


def _property(schema: dict[str, Any], section: str, key: str) -> dict[str, Any]:
    sub: dict[str, Any] = schema["$defs"][section]["properties"][key]
    return sub


@pytest.mark.parametrize(
    ("section", "key", "parse", "values"),
    [
        ("Timeouts", "connect", parse_duration,
         ["250ms", "5s", "2m", "1h", "1.5s", " 3 s ", "7", "0s", "5 seconds", "1d", "-1s", "s",
          "1.s", "", 3, 0.25, -1, True]),
        ("Limits", "max_request_body", parse_size,
         ["512", "64KiB", "10MiB", "1KB", "2 GiB", "64kib", "1.5MiB", "10 MB pls", "-1", 512, -5,
          1.5, False]),
        (None, "listen", parse_host_port,
         ["127.0.0.1:8080", ":8080", "[::1]:9464", "localhost:0", "0.0.0.0:65535",
          "localhost:65536", "localhost:99999", "localhost", "a:b", "1.2.3.4:", 8080, 70000,
          -1, True]),
    ],
)  # fmt: skip
def test_the_schema_patterns_agree_with_the_parsers(
    schema: dict[str, Any], section: str | None, key: str, parse: Any, values: list[object]
) -> None:
    """Durations, sizes and addresses stay strings in YAML; the schema's pattern
    accepts exactly the strings (and numbers) the loader accepts."""
    prop = schema["properties"][key] if section is None else _property(schema, section, key)
    validator = jsonschema.Draft202012Validator({**prop, "default": None})
    for value in values:
        assert validator.is_valid(value) == _accepts(parse, value), value
