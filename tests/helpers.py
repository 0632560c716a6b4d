"""Small helpers shared by test folders."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


def count_json_loads(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[int]:
    """Replace ``module.json.loads`` with a counting wrapper; returns the call list."""
    calls: list[int] = []
    real: Callable[..., Any] = json.loads

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module.json, "loads", counting)
    return calls


def profile_copy(directory: Path, name: str, version: str) -> Path:
    """The built-in profile copied to ``directory/name``, renamed and re-versioned."""
    import auditproxy.profiles

    target = directory / name
    shutil.copytree(Path(auditproxy.profiles.__file__).parent / "digg", target)
    rules = target / "rules.yaml"
    text = rules.read_text("utf-8")
    text = re.sub(r"(?m)^profile: .*$", f"profile: {name}", text, count=1)
    text = re.sub(r"(?m)^version: .*$", f'version: "{version}"', text, count=1)
    rules.write_text(text, "utf-8")
    return target


async def eventually(check: Callable[[], T], timeout: float = 5.0, step: float = 0.02) -> T:
    """Poll ``check`` until it returns something truthy (returned), at most ``timeout``
    seconds; then its last value."""
    value = check()
    for _ in range(max(1, int(timeout / step))):
        if value:
            break
        await asyncio.sleep(step)
        value = check()
    return value
