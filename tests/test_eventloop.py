"""``event_loop: auto | asyncio | uvloop`` picks the serving process's loop."""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

import pytest

from auditproxy import eventloop
from auditproxy.core.errors import ConfigError
from auditproxy.settings import load_settings


async def _loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_each_choice_runs_its_loop() -> None:
    assert eventloop.run(_loop_name(), "asyncio").startswith("asyncio")
    assert eventloop.run(_loop_name(), "uvloop").startswith("uvloop")
    assert eventloop.run(_loop_name(), "auto").startswith("uvloop")  # installed here


def test_uvloop_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto falls back to asyncio; an explicit uvloop is a config error naming the key."""
    real_import = builtins.__import__

    def no_uvloop(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "uvloop":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(eventloop, "has_uvloop", lambda: False)
    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    assert eventloop.run(_loop_name(), "auto").startswith("asyncio")
    with pytest.raises(ConfigError) as info:
        eventloop.run(_loop_name(), "uvloop", "cfg.yaml")
    assert str(info.value).startswith("cfg.yaml: event_loop: got 'uvloop'")


def test_setting_is_validated() -> None:
    flags: dict[str, object] = {"upstream": "http://127.0.0.1:9"}
    assert load_settings(None, env={}, flags=flags).event_loop == "auto"
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={"AUDITPROXY_EVENT_LOOP": "trio"}, flags=flags)
    assert "event_loop" in str(info.value)
