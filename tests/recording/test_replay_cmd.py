"""`auditproxy replay`: re-sends recorded requests, without redacted values, and compares."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
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
    """Replaying to the recorded upstream gives the same statuses, and --audit the same
    rules, except the one about the query-string credential the replay never resends."""
    path, _ = await record_sample_traffic(sample_upstream, tmp_path / "rec", metrics, profile)
    code, out, err = await run_cli("replay", str(path), "--target", sample_upstream,
                                   "--concurrency", "4", "--audit")  # fmt: skip
    assert code == 0, err
    assert f"0 of {len(SAMPLE_ROWS)} changed status" in out
    assert "ARP.03.LOCATION-201" in out  # --audit classified the new responses
    gone = out.partition("no longer found:\n")[2].splitlines()
    assert [line.split()[0] for line in gone if not line.startswith("  /")] == [
        "SAK.15.NO-KEY-IN-URL"
    ]


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


async def test_replay_unreachable_target_is_one_line_exit_1(
    sample_upstream: str, tmp_path: Path, metrics: Metrics, profile: Profile
) -> None:
    """A target where nothing listens is one line naming it, exit 1, nothing sent."""
    path, _ = await record_sample_traffic(sample_upstream, tmp_path / "rec", metrics, profile)
    code, out, err = await run_cli("replay", str(path), "--target", "http://127.0.0.1:9",
                                   "--timeout", "5s")  # fmt: skip
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        "auditproxy replay: nothing answers at http://127.0.0.1:9 (cannot connect to "
        f"127.0.0.1:9: Connection refused); {len(SAMPLE_ROWS)} requests not sent"
    ]


async def test_replay_bad_header_flag_exit_2(tmp_path: Path) -> None:
    """A --header without a colon is a flag error naming the flag, exit 2."""
    p = tmp_path / "r.jsonl"
    p.write_text("")
    code, _, err = await run_cli("replay", str(p), "--target", "http://127.0.0.1:9",
                                 "--header", "nocolon")  # fmt: skip
    assert code == 2
    assert "--header" in err


def har_line(
    url: str,
    status: int,
    *,
    method: str = "GET",
    body: str | None = None,
    origin: str = "upstream",
    started: str = "2024-06-03T07:33:20.000Z",
) -> str:
    """One recorded exchange as a JSONL line, as the recorder writes it."""
    request: dict[str, Any] = {"method": method, "url": url, "headers": []}
    if body is not None:
        request["postData"] = {"mimeType": "application/json", "text": body, "_truncated": False}
    return json.dumps({
        "startedDateTime": started, "time": 1, "request": request,
        "response": {"status": status, "headers": [], "content": {"size": 0}},
        "_audit": {"origin": origin, "route": "/orders", "findings": []},
    })  # fmt: skip


@pytest.fixture
async def echo_target(aiohttp_server: Any) -> tuple[str, list[tuple[str, str, bytes]]]:
    """A target answering 200 to everything; records (method, path, body) it got."""
    seen: list[tuple[str, str, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.method, request.path, await request.read()))
        return web.json_response({"ok": True}, status=200)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}", seen


async def test_redacted_bodies_and_proxy_refusals_are_skipped_and_counted(
    tmp_path: Path, echo_target: tuple[str, list[tuple[str, str, bytes]]]
) -> None:
    """A body with a redacted field is not sent as the literal REDACTED (counted, named);
    a request the proxy refused itself (413) is not replayed; --send-redacted sends."""
    target, seen = echo_target
    rec = tmp_path / "r.jsonl"
    rec.write_text("\n".join([
        har_line("http://a/login", 200, method="POST", body='{"user":"u","password":"REDACTED"}'),
        har_line("http://a/upload", 413, method="POST", body='{"x":1}', origin="proxy"),
        har_line("http://a/orders", 200),
    ]) + "\n")  # fmt: skip
    code, out, err = await run_cli("replay", str(rec), "--target", target)
    assert code == 0, err
    assert [(m, p) for m, p, _ in seen] == [("GET", "/orders")]
    assert "replayed 1 requests" in out
    assert "skipped 2" in out
    assert f"{rec}:1: skipped: request body holds a redacted field" in err
    assert f"{rec}:2: skipped: the proxy refused it (413)" in err
    seen.clear()
    code, _, err = await run_cli("replay", str(rec), "--target", target, "--send-redacted")
    assert code == 0, err
    assert sorted(p for _, p, _ in seen) == ["/login", "/orders"]


async def test_several_files_and_directories_fail_on_change(
    tmp_path: Path, echo_target: tuple[str, list[tuple[str, str, bytes]]]
) -> None:
    """Several inputs (a file and a folder of worker recordings) are replayed in time
    order; a status change fails the run only with --fail-on-change."""
    target, seen = echo_target
    (tmp_path / "d" / "worker-1").mkdir(parents=True)
    a = tmp_path / "a.jsonl"
    a.write_text(har_line("http://a/first", 200, started="2024-06-03T07:00:00.000Z") + "\n")
    later = tmp_path / "d" / "worker-1" / "auditproxy-20240603T080000-p2-000001.jsonl"
    earlier = tmp_path / "d" / "auditproxy-20240603T073000-p1-000001.jsonl"
    later.write_text(har_line("http://a/third", 404) + "\n")
    earlier.write_text(har_line("http://a/second", 200) + "\n")
    args = ("replay", str(a), str(tmp_path / "d"), "--target", target, "--concurrency", "1")
    code, out, err = await run_cli(*args)
    assert code == 0, err
    assert [p for _, p, _ in seen] == ["/first", "/second", "/third"]
    assert "1 of 3 changed status" in out
    code, _, _ = await run_cli(*args, "--fail-on-change")
    assert code == 1


async def test_errors_carry_their_details(tmp_path: Path) -> None:
    """A target that drops the connection is listed with what went wrong, exit 1."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):  # the reachability probe
            await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rec = tmp_path / "r.jsonl"
    rec.write_text(har_line("http://a/orders?access_token=t0ken&page=2", 200) + "\n")
    async with server:
        code, out, err = await run_cli("replay", str(rec), "--target", f"http://127.0.0.1:{port}")
    assert code == 1, err
    assert "requests without a response:" in out
    assert "ServerDisconnectedError: Server disconnected" in out
    assert f"(first: {rec}:1 GET /orders?access_token=REDACTED&page=2)" in out
    assert "t0ken" not in out


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [("--rate", "0", "above 0"), ("--rate", "-2", "above 0"), ("--timeout", "5x", "duration"),
     ("--timeout", "0s", "above 0"), ("--concurrency", "0", "1 or more")],
)  # fmt: skip
async def test_bad_bounds_are_refused(tmp_path: Path, flag: str, value: str, expected: str) -> None:
    """--rate 0, a timeout that is not a duration and --concurrency 0 are flag errors."""
    rec = tmp_path / "r.jsonl"
    rec.write_text(har_line("http://a/orders", 200) + "\n")
    code, _, err = await run_cli("replay", str(rec), "--target", "http://127.0.0.1:9", flag, value)
    assert code == 2
    assert flag in err
    assert expected in err


async def test_timeout_takes_a_duration(
    tmp_path: Path, echo_target: tuple[str, list[tuple[str, str, bytes]]]
) -> None:
    """--timeout 250ms works like the config's durations."""
    target, seen = echo_target
    rec = tmp_path / "r.jsonl"
    rec.write_text(har_line("http://a/orders", 200) + "\n")
    code, _, err = await run_cli("replay", str(rec), "--target", target, "--timeout", "250ms")
    assert code == 0, err
    assert len(seen) == 1


async def test_only_the_last_attempt_of_a_retried_request_is_replayed(
    tmp_path: Path, echo_target: tuple[str, list[tuple[str, str, bytes]]]
) -> None:
    """With retry on, the recording has one line per attempt; the client sent the
    request once, so replay sends it once."""
    target, seen = echo_target
    lines = []
    for attempt, status in ((1, 503), (2, 503), (3, 200)):
        entry = json.loads(har_line("http://a/orders/7", status))
        entry["_audit"].update(attempt=attempt, attempts=3)
        lines.append(json.dumps(entry))
    rec = tmp_path / "r.jsonl"
    rec.write_text("\n".join(lines) + "\n")
    code, out, err = await run_cli("replay", str(rec), "--target", target)
    assert code == 0, err
    assert [p for _, p, _ in seen] == ["/orders/7"]
    assert "skipped 2" in out
    assert f"{rec}:1: skipped: attempt 1 of 3 of a retried request" in err
