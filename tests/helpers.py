"""Small helpers shared by test folders."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest


def count_json_loads(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[int]:
    """Replace ``module.json.loads`` with a counting wrapper; returns the call list."""
    calls: list[int] = []
    real: Callable[..., Any] = json.loads

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module.json, "loads", counting)
    return calls
