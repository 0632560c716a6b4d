"""Reload in a real `auditproxy serve` process: after SIGHUP and after
``POST /-/reload`` the next recorded line carries the new profile and version, and
``/-/report`` shows the new profile (counting from the profile change)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import profile_copy
from tests.recording.proxyproc import ServeProcess, recorded_lines, serve_config


async def _exchange(proxy: ServeProcess, s: aiohttp.ClientSession, n: int) -> None:
    async with s.get(f"http://127.0.0.1:{proxy.port}/orders/{n}") as r:
        await r.read()
    await proxy.wait_completed(n)


async def _report(proxy: ServeProcess, s: aiohttp.ClientSession) -> Any:
    async with s.get(f"http://127.0.0.1:{proxy.admin_port}/-/report") as r:
        return await r.json()


async def test_sighup_and_post_reload_switch_recording_and_report(
    tmp_path: Path, sample_upstream: str
) -> None:
    rec = tmp_path / "rec"
    strict = profile_copy(tmp_path, "strict", "9.9.9")
    base = (
        f"upstream: {sample_upstream}\nrecord: {{enabled: true, dir: '{rec}'}}\n"
        "log: {level: info, format: json}\n"
    )
    config = tmp_path / "auditproxy.yaml"
    config.write_text(base)
    proxy = await serve_config(config)
    try:
        async with aiohttp.ClientSession() as s:
            await _exchange(proxy, s, 1)
            config.write_text(base + f"profile: '{strict}'\n")
            proxy.proc.send_signal(signal.SIGHUP)
            reloaded = await proxy.wait_event("config_reloaded")
            assert (reloaded["profile_version"], reloaded["report_restarted"]) == ("9.9.9", True)
            await _exchange(proxy, s, 2)
            after_hup = await _report(proxy, s)

            config.write_text(base)
            async with s.post(f"http://127.0.0.1:{proxy.admin_port}/-/reload") as r:
                assert r.status == 200
            await _exchange(proxy, s, 3)
            await _exchange(proxy, s, 4)
            after_post = await _report(proxy, s)
        assert await proxy.stop() == 0
    finally:
        await proxy.kill()

    assert after_hup["profile"] == {"name": "strict", "version": "9.9.9"}
    assert after_hup["totals"]["exchanges"] == 1
    assert after_post["profile"] == {"name": "digg", "version": "1.2.0"}
    assert after_post["totals"]["exchanges"] == 2
    lines = sorted(recorded_lines(rec), key=lambda e: str(e["request"]["url"]))
    assert [(e["_audit"]["profile"], e["_audit"]["profile_version"]) for e in lines] == [
        ("digg", "1.2.0"),
        ("strict", "9.9.9"),
        ("digg", "1.2.0"),
        ("digg", "1.2.0"),
    ]
