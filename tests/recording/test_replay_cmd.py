"""`auditproxy replay`: re-sends recorded requests, without redacted values, and compares."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from auditproxy.core.engine import Profile
from auditproxy.sinks.metrics import Metrics
from tests.recording.factories import SAMPLE_ROWS, SECRETS, record_sample_traffic


async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "auditproxy", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_replay_to_same_upstream_changes_nothing(
    sample_upstream: str, tmp_path: Path, metrics: Metrics, profile: Profile
) -> None:
    """Replaying to the recorded upstream gives the same statuses, and --audit the same rules."""
    path, _ = await record_sample_traffic(sample_upstream, tmp_path / "rec", metrics, profile)
    code, out, err = await run_cli("replay", str(path), "--target", sample_upstream,
                                   "--concurrency", "4", "--audit")  # fmt: skip
    assert code == 0, err
    assert f"0 of {len(SAMPLE_ROWS)} changed status" in out
    assert "ARP.03.LOCATION-201" in out  # --audit classified the new responses
    assert "no longer found" not in out


async def test_replay_drops_redacted_values_and_shows_changes(
    sample_upstream: str, tmp_path: Path, metrics: Metrics, profile: Profile, aiohttp_server: Any
) -> None:
    """Redacted headers and query values are not sent, --header is, status changes are listed."""
    path, _ = await record_sample_traffic(sample_upstream, tmp_path / "rec", metrics, profile)
    seen: list[tuple[dict[str, str], str, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), request.query_string, await request.read()))
        return web.json_response({"ok": True}, status=200)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    code, out, err = await run_cli(
        "replay", str(path), "--target", f"http://127.0.0.1:{server.port}",
        "--header", "Authorization: Bearer fresh", "--rate", "200",
    )  # fmt: skip
    assert code == 0, err
    assert len(seen) == len(SAMPLE_ROWS)
    for headers, query, _ in seen:
        assert headers["Authorization"] == "Bearer fresh"
        assert "Cookie" not in headers
        assert "X-Api-Key" not in headers
        assert "REDACTED" not in query
        assert query == "page=1"
        for secret in SECRETS.values():
            assert secret not in str(headers) + query
    assert any(body == b'{"item": "widget", "quantity": 2}' for _, _, body in seen)
    assert "405    200" in out
    assert "changed" in out


async def test_replay_unreachable_target_exit_1(
    sample_upstream: str, tmp_path: Path, metrics: Metrics, profile: Profile
) -> None:
    """A target that refuses connections is reported per request, exit 1."""
    path, _ = await record_sample_traffic(sample_upstream, tmp_path / "rec", metrics, profile)
    code, out, _ = await run_cli("replay", str(path), "--target", "http://127.0.0.1:9",
                                 "--timeout", "5")  # fmt: skip
    assert code == 1
    assert "error:connect" in out


async def test_replay_bad_header_flag_exit_2(tmp_path: Path) -> None:
    """A --header without a colon is a flag error naming the flag, exit 2."""
    p = tmp_path / "r.jsonl"
    p.write_text("")
    code, _, err = await run_cli("replay", str(p), "--target", "http://127.0.0.1:9",
                                 "--header", "nocolon")  # fmt: skip
    assert code == 2
    assert "--header" in err
