"""The container image's build, install and entrypoint steps, run in a fresh venv.

No Docker engine is needed: the files the Dockerfile copies into the builder are
copied into a temporary build context, a wheel is built from it (as the builder
stage does), installed into a new virtual environment together with its
dependencies (as the final stage does), and the image's entrypoint is run there.
Takes about 20-40 s (pip resolves the runtime dependencies, from its cache when warm).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from .promql import ROOT
from .test_static import instructions

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the package installed from a wheel built like the image builds it."""
    base = tmp_path_factory.mktemp("image")
    context = base / "context"
    context.mkdir()
    for args in instructions("COPY"):
        if "--from" in args or "config/docker" in args:
            continue
        *sources, _dest = shlex.split(args)
        for src in sources:
            path = ROOT / src
            if path.is_dir():
                shutil.copytree(path, context / src, ignore=shutil.ignore_patterns(
                    "__pycache__", "*.egg-info"))  # fmt: skip
            else:
                shutil.copy2(path, context / src)
    wheels = base / "wheels"
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
              "-q", "--wheel-dir", str(wheels), str(context)], cwd=base)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (wheel,) = wheels.glob("auditproxy-*.whl")
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    r = _run([str(env_dir / "bin/python"), "-m", "pip", "install", "-q",
              "--disable-pip-version-check", str(wheel)], cwd=base, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return env_dir


def test_entrypoint_help_runs_from_the_installed_wheel(image_venv: Path) -> None:
    """`auditproxy --help` (the image's ENTRYPOINT) works from the wheel, outside the checkout."""
    r = _run([str(image_venv / "bin/auditproxy"), "--help"], cwd=image_venv)
    assert r.returncode == 0, r.stderr
    assert "serve" in r.stdout
    r = _run([str(image_venv / "bin/auditproxy"), "serve", "--help"], cwd=image_venv)
    assert r.returncode == 0, r.stderr
    assert "--config" in r.stdout


def test_image_config_is_valid_for_the_installed_wheel(image_venv: Path) -> None:
    """`auditproxy check-config config/docker/auditproxy.yaml` accepts the image's config."""
    config = ROOT / "config" / "docker" / "auditproxy.yaml"
    r = _run([str(image_venv / "bin/auditproxy"), "check-config", str(config)], cwd=image_venv)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "9464" in r.stdout


def test_wheel_carries_what_compose_runs(image_venv: Path) -> None:
    """The sample upstream, the traffic script's import and the profile data are installed."""
    py = str(image_venv / "bin/python")
    r = _run([py, "-m", "auditproxy.sample_upstream", "--help"], cwd=image_venv)
    assert r.returncode == 0, r.stderr
    r = _run([py, str(ROOT / "config/docker/traffic.py"), "--help"], cwd=image_venv)
    assert r.returncode == 0, r.stderr
    code = (
        "import json, importlib.resources as r; "
        "print(json.dumps(sorted(p.name for p in r.files('auditproxy.profiles.digg').iterdir())))"
    )
    r = _run([py, "-c", code], cwd=image_venv)
    assert r.returncode == 0, r.stderr
    assert any(name.endswith(".yaml") for name in json.loads(r.stdout))


def test_wheel_carries_the_html_report_template(image_venv: Path, tmp_path: Path) -> None:
    """`auditproxy audit --format html` works from the wheel: the template is package data."""
    entry = {
        "startedDateTime": "2024-06-03T07:33:20.000Z", "time": 1,
        "request": {"method": "GET", "url": "http://api.test/orders/1", "headers": []},
        "response": {"status": 200, "headers": [], "content": {"size": 0}},
    }  # fmt: skip
    rec = tmp_path / "one.jsonl"
    rec.write_text(json.dumps(entry) + "\n")
    out = tmp_path / "report.html"
    r = _run([str(image_venv / "bin/auditproxy"), "audit", "--format", "html", "--fail-on",
              "never", "-o", str(out), str(rec)], cwd=image_venv)  # fmt: skip
    assert r.returncode == 0, r.stderr
    page = out.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert '<div class="value" id="n-exchanges">1</div>' in page


def test_healthcheck_command_is_valid_python() -> None:
    """The HEALTHCHECK's python snippet compiles (it runs in an image with no curl)."""
    (health,) = instructions("HEALTHCHECK")
    argv = json.loads(health[health.index("CMD") + 3 :].strip())
    assert argv[:2] == ["python", "-c"]
    compile(argv[2], "<healthcheck>", "exec")
