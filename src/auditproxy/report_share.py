"""One ``/-/report`` over every worker of ``serve --workers N``.

Each worker counts the exchanges it served in its own ``Report``. Where the
workers share prometheus-client's multiprocess folder (``PROMETHEUS_MULTIPROC_DIR``,
set by :mod:`auditproxy.workers`), every worker writes its report's ``state()``
there as ``report-<pid>.json`` (atomically, at most every ``INTERVAL`` seconds and
only when it changed, and once more on shutdown), and the worker answering
``/-/report`` merges its own live report with the others' files of the same
profile (after a reload, a worker that has not reloaded yet is left out). The
others' part of the answer is at most ``INTERVAL`` seconds old.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from auditproxy.core.report import Report

ENV_SHARED_DIR = "PROMETHEUS_MULTIPROC_DIR"
INTERVAL = 0.5
_PREFIX = "report-"


def shared_dir() -> str | None:
    """The folder the workers share, or None for a single process."""
    return os.environ.get(ENV_SHARED_DIR) or None


def _own_file(directory: str) -> str:
    return os.path.join(directory, f"{_PREFIX}{os.getpid()}.json")


def _profile_tag(report: Report) -> list[str] | None:
    p = report.profile
    return None if p is None else [p.name, p.version]


def write_state(report: Report, directory: str) -> None:
    path = _own_file(directory)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({**report.state(), "profile": _profile_tag(report)}, fh)
    os.replace(tmp, path)


def merged(report: Report, directory: str) -> dict[str, Any]:
    """This process's report plus every other worker's last published state of
    the same profile (a worker that has not yet reloaded into it is left out)."""
    total = Report(report.profile)
    total.merge(report.state())
    own, tag = _own_file(directory), _profile_tag(report)
    for path in sorted(glob.glob(os.path.join(directory, f"{_PREFIX}*.json"))):
        if path == own:
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                state = json.load(fh)
            if state.get("profile") == tag:
                total.merge(state)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # a worker that is just starting or a file being replaced
    return total.as_dict()


def publisher(
    report: Callable[[], Report | None], directory: str
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """An aiohttp ``cleanup_ctx`` entry that publishes ``report()`` while the app runs."""

    async def publish(_app: Any) -> AsyncIterator[None]:
        async def loop() -> None:
            last: tuple[int, int] | None = None
            while True:
                current = report()
                # A reload may replace the report: a new one is published even at
                # the same count.
                key = None if current is None else (id(current), current.exchanges)
                if current is not None and key != last:
                    last = key
                    with contextlib.suppress(OSError):
                        write_state(current, directory)
                await asyncio.sleep(INTERVAL)

        task = asyncio.create_task(loop(), name="auditproxy-report-share")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        final = report()
        if final is not None:
            with contextlib.suppress(OSError):
                write_state(final, directory)

    return contextlib.asynccontextmanager(publish)
