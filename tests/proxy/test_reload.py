"""Reload keeps every consumer of the profile consistent, and does its file I/O off
the event loop: from the next exchange on the recording, ``/-/report`` and the
build info follow the new profile; an exchange in flight keeps the snapshot it
started with; reloads run one at a time."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from auditproxy import __version__, report_share
from auditproxy.core.report import Report
from auditproxy.profiles import load_profile
from auditproxy.server import loader_for
from auditproxy.settings import Settings
from tests.helpers import eventually, profile_copy
from tests.proxy.conftest import Proxy, ProxyFactory, Upstream
from tests.recording.factories import make_exchange
from tests.recording.proxyproc import recorded_lines


async def _lines(directory: Path, n: int) -> list[dict[str, Any]]:
    """The first ``n`` recorded lines, once the writer has written them."""
    await eventually(lambda: len(recorded_lines(directory)) >= n)
    return recorded_lines(directory)


async def _json(s: aiohttp.ClientSession, method: str, url: str) -> tuple[int, Any]:
    async with s.request(method, url) as r:
        return r.status, await r.json()


async def _recording_proxy(
    make_proxy: ProxyFactory, upstream: Upstream, rec: Path, config: Path
) -> Proxy:
    proxy = await make_proxy(upstream.url, record__enabled=True, record__dir=str(rec))
    proxy.ctx.loader = loader_for(str(config), {"upstream": upstream.url})
    return proxy


async def test_reload_moves_recording_report_and_build_info_to_the_new_profile(
    tmp_path: Path, upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    rec, config = tmp_path / "rec", tmp_path / "c.yaml"
    strict = profile_copy(tmp_path, "strict", "9.9.9")
    proxy = await _recording_proxy(make_proxy, upstream, rec, config)
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{proxy.url}/status/418") as r:
            await r.read()
        (first,) = await _lines(rec, 1)
        fired = first["_audit"]["findings"][0]["rule"]
        config.write_text(f"profile: {strict}\nrules: {{{fired}: {{enabled: false}}}}\n")
        status, doc = await _json(s, "POST", f"{proxy.admin_url}/-/reload")
        assert (status, doc["profile"]) == (200, "strict")
        async with s.get(f"{proxy.url}/status/418") as r:
            await r.read()
        _, report = await _json(s, "GET", f"{proxy.admin_url}/-/report")
    lines = await _lines(rec, 2)
    audits = [line["_audit"] for line in lines]
    assert [(a["profile"], a["profile_version"]) for a in audits] == [
        ("digg", "1.2.0"),
        ("strict", "9.9.9"),
    ]
    assert fired not in {f["rule"] for f in audits[1]["findings"]}
    # The report restarted with the profile: it counts only what the new one judged.
    assert report["profile"] == {"name": "strict", "version": "9.9.9"}
    assert report["totals"]["exchanges"] == 1
    assert fired not in report["rules"]
    labels = {"profile": "strict", "profile_version": "9.9.9", "version": __version__}
    assert proxy.sample("auditproxy_build_info", labels) == 1


async def test_reload_that_keeps_the_profile_keeps_the_report(
    tmp_path: Path, upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    rec, config = tmp_path / "rec", tmp_path / "c.yaml"
    config.write_text("annotate: false\n")
    proxy = await _recording_proxy(make_proxy, upstream, rec, config)
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{proxy.url}/status/418") as r:
            await r.read()
        status, _ = await _json(s, "POST", f"{proxy.admin_url}/-/reload")
        assert status == 200
        async with s.get(f"{proxy.url}/status/418") as r:
            await r.read()
        _, report = await _json(s, "GET", f"{proxy.admin_url}/-/report")
    assert report["totals"]["exchanges"] == 2
    assert report["profile"] == {"name": "digg", "version": "1.2.0"}


async def test_exchange_in_flight_keeps_the_profile_it_started_with(
    tmp_path: Path, upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    """Audited and recorded with the old profile, and not counted into the new
    profile's report (its findings follow other rules)."""
    rec, config = tmp_path / "rec", tmp_path / "c.yaml"
    config.write_text(f"profile: {profile_copy(tmp_path, 'strict', '9.9.9')}\n")
    proxy = await _recording_proxy(make_proxy, upstream, rec, config)
    async with aiohttp.ClientSession() as s:
        slow = asyncio.ensure_future(s.get(f"{proxy.url}/slow?s=1"))
        await asyncio.sleep(0.2)
        status, _ = await _json(s, "POST", f"{proxy.admin_url}/-/reload")
        assert status == 200
        assert not slow.done()  # the reload happened while it was in flight
        async with await slow as r:
            assert await r.text() == "slow done"
        (line,) = await _lines(rec, 1)
        _, report = await _json(s, "GET", f"{proxy.admin_url}/-/report")
    assert line["_audit"]["profile_version"] == "1.2.0"
    assert report["profile"]["name"] == "strict"
    assert report["totals"]["exchanges"] == 0


class SlowLoader:
    """Loads the config after blocking its thread for ``seconds``; ``active`` records
    how many loads ran at once, ``entered`` is set when a load begins."""

    def __init__(self, base: Callable[[], Settings], seconds: float) -> None:
        self.base, self.seconds = base, seconds
        self.active: list[int] = []
        self.entered = threading.Event()
        self._lock = threading.Lock()
        self._running = 0

    def __call__(self) -> Settings:
        with self._lock:
            self._running += 1
            self.active.append(self._running)
        self.entered.set()
        time.sleep(self.seconds)
        with self._lock:
            self._running -= 1
        return self.base()


async def _slow_reloading_proxy(
    tmp_path: Path, upstream: Upstream, make_proxy: ProxyFactory, seconds: float
) -> tuple[Proxy, SlowLoader]:
    config = tmp_path / "c.yaml"
    config.write_text("annotate: true\n")
    proxy = await make_proxy(upstream.url)
    loader = SlowLoader(loader_for(str(config), {"upstream": upstream.url}), seconds)
    proxy.ctx.loader = loader
    return proxy, loader


async def test_reload_reads_the_file_off_the_event_loop(
    tmp_path: Path, upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    """While a reload's load blocks for 0.8 s, requests are still answered at once."""
    proxy, loader = await _slow_reloading_proxy(tmp_path, upstream, make_proxy, 0.8)
    async with aiohttp.ClientSession() as s:
        reload = asyncio.ensure_future(_json(s, "POST", f"{proxy.admin_url}/-/reload"))
        await asyncio.to_thread(loader.entered.wait, 5.0)
        latencies = []
        for _ in range(5):
            t0 = time.perf_counter()
            async with s.get(f"{proxy.url}/status/200") as r:
                await r.read()
            latencies.append(time.perf_counter() - t0)
        assert not reload.done()  # the requests were answered during the load
        status, _ = await reload
    assert status == 200
    assert proxy.ctx.runtime.settings.annotate
    assert max(latencies) < 0.4, latencies


async def test_concurrent_reloads_run_one_at_a_time(
    tmp_path: Path, upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    """Three POST /-/reload and one SIGHUP-style reload at once: each load runs alone."""
    proxy, loader = await _slow_reloading_proxy(tmp_path, upstream, make_proxy, 0.2)
    async with aiohttp.ClientSession() as s:
        url = f"{proxy.admin_url}/-/reload"
        hup = proxy.ctx.reload()  # what the SIGHUP handler does: schedule, not wait
        answers = await asyncio.gather(*(_json(s, "POST", url) for _ in range(3)))
        assert await hup is None
    assert [status for status, _ in answers] == [200, 200, 200]
    assert len(loader.active) == 4
    assert max(loader.active) == 1, loader.active


def test_workers_report_leaves_out_a_worker_still_on_the_old_profile(tmp_path: Path) -> None:
    """With --workers, a worker that has not reloaded yet is not merged into the
    report of one that has; one on the same profile is."""
    old, new = load_profile("digg"), load_profile(str(profile_copy(tmp_path, "strict", "9.9.9")))
    shared = tmp_path / "shared"
    shared.mkdir()
    other = Report(old)
    for i in range(3):
        other.add(make_exchange(request_id=f"r{i}"), ())
    report_share.write_state(other, str(shared))
    os.replace(shared / f"report-{os.getpid()}.json", shared / "report-1.json")  # another pid
    assert report_share.merged(Report(new), str(shared))["totals"]["exchanges"] == 0
    assert (
        report_share.merged(Report(load_profile("digg")), str(shared))["totals"]["exchanges"] == 3
    )
