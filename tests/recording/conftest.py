"""Fixtures for the recording tests: recorder settings, a metrics registry, a profile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from auditproxy.core.engine import Profile
from auditproxy.profiles import load_profile
from auditproxy.sinks.metrics import Metrics
from tests.recording.factories import RecordSettings


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest.fixture
def profile() -> Profile:
    return load_profile("digg")


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., RecordSettings]:
    def build(**kw: Any) -> RecordSettings:
        kw.setdefault("dir", str(tmp_path / "rec"))
        return RecordSettings(**kw)

    return build


@pytest.fixture
async def sample_upstream(aiohttp_server: Any) -> str:
    """The sample orders API on 127.0.0.1; its base URL."""
    from auditproxy.sample_upstream import make_sample_app

    server = await aiohttp_server(make_sample_app(), host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}"
