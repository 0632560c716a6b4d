"""Recorder faults through a real proxy: a full disk (a small tmpfs), a read-only
directory and a directory deleted at run time never fail or delay a request; the
exchanges that cannot be written are counted as ``write_error`` drops, ``/readyz``
answers 503 naming the directory and the error, and recording resumes (with
``/readyz`` ready again, traffic or not) once the fault clears."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from statistics import median
from typing import Any

import aiohttp
import pytest

from auditproxy.sinks.recorder import RETRY_SECONDS
from tests.helpers import eventually
from tests.proxy.conftest import Proxy, ProxyFactory, Upstream

# Every request is answered within this while the recorder is faulted (idle: a few ms).
LATENCY_BOUND = 0.5
RECOVERY = RETRY_SECONDS * 3 + 2.0  # seconds until a cleared fault is noticed, at most


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (needs root and mount rights)."""
    path.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root and CAP_SYS_ADMIN): {exc}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=10)


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """``directory`` read-only for new files: a read-only bind mount over it for root
    (whom permissions do not stop), mode 0555 for anyone else."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    try:
        _mount("--bind", str(directory), str(directory))
        _mount("-o", "remount,ro,bind", str(directory))
    except (OSError, subprocess.CalledProcessError) as exc:
        subprocess.run(["umount", str(directory)], check=False, timeout=10)
        pytest.skip(f"cannot bind-mount the directory read-only as root: {exc}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True, timeout=10)


def _fill(disk: Path) -> Path:
    """Write a file on ``disk`` until no space is left; returns it."""
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as fh:
        while True:
            fh.write(b"\0" * 65536)
    return filler


def _lines(directory: Path) -> list[dict[str, Any]]:
    """Every recorded line; each must be whole JSON (no line cut by a fault)."""
    return [
        json.loads(line)
        for path in sorted(directory.glob("auditproxy-*.jsonl"))
        for line in path.read_text("utf-8").splitlines()
    ]


class Counts:
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    @property
    def recorded(self) -> float:
        return self.proxy.sample("auditproxy_recorded_exchanges_total")

    @property
    def dropped(self) -> float:
        return self.proxy.sample("auditproxy_recorder_dropped_total", {"reason": "write_error"})

    def settled(self, n: int) -> bool:
        """Every one of ``n`` exchanges is either recorded or counted as dropped."""
        return self.recorded + self.dropped == n


async def _traffic(s: aiohttp.ClientSession, proxy: Proxy, n: int) -> list[float]:
    """``n`` requests, one after another; each one's latency in seconds."""
    latencies = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with s.get(f"{proxy.url}/status/200") as r:
            assert r.status == 200
            await r.read()
        latencies.append(time.perf_counter() - t0)
    return latencies


async def _recording_proxy(
    make_proxy: ProxyFactory, upstream: Upstream, rec: Path, warm: int, **flags: object
) -> tuple[Proxy, Counts]:
    """A recording proxy that has recorded ``warm`` exchanges."""
    proxy = await make_proxy(upstream.url, record__enabled=True, record__dir=str(rec), **flags)
    counts = Counts(proxy)
    async with aiohttp.ClientSession() as s:
        await _traffic(s, proxy, warm)
    assert await eventually(lambda: counts.recorded == warm)
    return proxy, counts


async def _readyz(s: aiohttp.ClientSession, proxy: Proxy) -> tuple[int, Any]:
    async with s.get(f"{proxy.admin_url}/readyz") as r:
        return r.status, await r.json()


async def _assert_degraded(
    s: aiohttp.ClientSession, proxy: Proxy, directory: Path, error: str
) -> None:
    status, doc = await _readyz(s, proxy)
    assert status == 503, doc
    assert any(str(directory) in r and error in r for r in doc["reasons"]), doc


async def _assert_recovers_idle(s: aiohttp.ClientSession, proxy: Proxy) -> None:
    """Ready again without any traffic (the writer retries on its own)."""
    status, doc = 0, None
    for _ in range(int(RECOVERY / 0.1)):
        status, doc = await _readyz(s, proxy)
        if status == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz still {status} {RECOVERY}s after the fault cleared: {doc}")


async def test_full_disk(tmp_path: Path, upstream: Upstream, make_proxy: ProxyFactory) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        rec = disk / "rec"
        proxy, counts = await _recording_proxy(make_proxy, upstream, rec, 5)
        async with aiohttp.ClientSession() as s:
            idle = await _traffic(s, proxy, 40)
            assert await eventually(lambda: counts.recorded == 45)
            filler = _fill(disk)
            full = await _traffic(s, proxy, 40)
            assert await eventually(lambda: counts.settled(85))
            assert counts.dropped >= 36  # the last page of the file may still take a few lines
            await _assert_degraded(s, proxy, rec, "No space left on device")
            # An idle retry while the disk is still full does not call it writable.
            await asyncio.sleep(RETRY_SECONDS * 2.5)
            await _assert_degraded(s, proxy, rec, "No space left on device")
            filler.unlink()
            await _assert_recovers_idle(s, proxy)
            before = counts.recorded
            await _traffic(s, proxy, 5)
            assert await eventually(lambda: counts.recorded == before + 5)
            assert counts.settled(90)
        assert max(full) < LATENCY_BOUND, (max(idle), max(full))
        for name, xs in (("healthy", idle), ("disk full", full)):
            print(f"{name}: median {median(xs) * 1000:.1f} ms, max {max(xs) * 1000:.1f} ms")
        assert len(_lines(rec)) == counts.recorded


async def test_read_only_directory(
    tmp_path: Path, upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    """New files cannot be created (every line here starts a new file)."""
    rec = tmp_path / "rec"
    proxy, counts = await _recording_proxy(
        make_proxy, upstream, rec, 3, record__rotate_bytes="1", record__keep_files=1000
    )
    async with aiohttp.ClientSession() as s:
        with read_only(rec):
            latencies = await _traffic(s, proxy, 20)
            assert await eventually(lambda: counts.settled(23))
            assert counts.dropped >= 19
            error = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
            await _assert_degraded(s, proxy, rec, error)
        await _assert_recovers_idle(s, proxy)
        before = counts.recorded
        await _traffic(s, proxy, 3)
        assert await eventually(lambda: counts.recorded == before + 3)
    assert max(latencies) < LATENCY_BOUND, latencies
    assert len(_lines(rec)) == counts.recorded


async def test_directory_deleted_is_recreated_and_nothing_is_lost(
    tmp_path: Path, upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    """Lines are never written into a file whose directory is gone."""
    rec = tmp_path / "rec"
    proxy, counts = await _recording_proxy(make_proxy, upstream, rec, 3)
    async with aiohttp.ClientSession() as s:
        shutil.rmtree(rec)
        await _traffic(s, proxy, 4)
        assert await eventually(lambda: counts.recorded == 7)
        assert (await _readyz(s, proxy))[0] == 200
    assert counts.dropped == 0
    assert len(_lines(rec)) == 4


async def test_directory_deleted_and_blocked(
    tmp_path: Path, upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    """Deleted, with a file where it was (it cannot be recreated) until that goes."""
    rec = tmp_path / "rec"
    proxy, counts = await _recording_proxy(make_proxy, upstream, rec, 2)
    async with aiohttp.ClientSession() as s:
        shutil.rmtree(rec)
        rec.write_text("in the way")
        latencies = await _traffic(s, proxy, 10)
        assert await eventually(lambda: counts.settled(12))
        assert counts.dropped == 10
        await _assert_degraded(s, proxy, rec, "File exists")
        rec.unlink()
        await _assert_recovers_idle(s, proxy)
        await _traffic(s, proxy, 3)
        assert await eventually(lambda: counts.recorded == 5)
    assert max(latencies) < LATENCY_BOUND, latencies
    assert len(_lines(rec)) == 3
