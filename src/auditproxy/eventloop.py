"""``event_loop: auto | asyncio | uvloop``: which event loop runs the serving
process. ``auto`` takes uvloop where it is installed (it is a dependency on
Linux and macOS) and asyncio's own loop elsewhere."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from auditproxy.core.errors import ConfigError

T = TypeVar("T")


def has_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(choice: str, source: str = "<config>") -> Callable[[], asyncio.AbstractEventLoop]:
    """The factory of the chosen loop; ConfigError when uvloop is asked for and missing."""
    if choice == "uvloop" or (choice == "auto" and has_uvloop()):
        try:
            import uvloop
        except ImportError:
            raise ConfigError(
                source,
                "event_loop",
                "got 'uvloop', but uvloop is not installed (pip install uvloop)",
            ) from None
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], choice: str, source: str = "<config>") -> T:
    """``asyncio.run`` on the chosen loop."""
    try:
        factory = loop_factory(choice, source)
    except ConfigError:
        main.close()
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
