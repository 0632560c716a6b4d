"""The event loop every async test runs on: asyncio's own, or uvloop with
``TEST_EVENT_LOOP=uvloop`` (CI runs the suite on both)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping

import pytest

LOOP = os.environ.get("TEST_EVENT_LOOP", "asyncio")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if LOOP == "uvloop":
        import uvloop

        return {"uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


def pytest_report_header() -> str:
    return f"event loop: {LOOP}"
