"""Rewrite and annotate end to end: the SPEC §11 example config as written, every
action through the real proxy, dry runs, skipped body rules, the recording of
both heads, and annotate on, off and per request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from auditproxy.core.har import to_har_entry
from auditproxy.core.redact import Redaction
from auditproxy.server import Serving, start
from auditproxy.settings import load_settings
from auditproxy.sinks import Completed, Sink
from tests.core.test_rewrite import SPEC_EXAMPLE

from .conftest import head_lines, raw_request
from .flaky import Flaky, answer, flaky_fixture

__all__ = ["flaky_fixture"]  # the fixture, used by name


class Running:
    def __init__(self, ctx: Any, registry: CollectorRegistry, port: int) -> None:
        self.ctx, self.registry, self.port = ctx, registry, port
        self.seen: list[Completed] = []
        ctx.sinks = (*ctx.sinks, Sink("test", self.seen.append))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rewrites(self, rule: str, action: str) -> float:
        labels = {"rule": rule, "action": action}
        return self.registry.get_sample_value("auditproxy_rewrites_total", labels) or 0.0


Start = Callable[..., Awaitable[Running]]


@pytest.fixture(name="run_config")
async def run_config_fixture(tmp_path: Path) -> AsyncIterator[Start]:
    servings: list[Serving] = []

    async def run(text: str, upstream: str, **extra: object) -> Running:
        config = tmp_path / "auditproxy.yaml"
        config.write_text(text, "utf-8")
        flags = {"upstream": upstream, "listen": "127.0.0.1:0", "admin": "127.0.0.1:0", **extra}
        settings = load_settings(str(config), env={}, flags=flags)
        registry = CollectorRegistry()
        serving = await start(settings, registry=registry)
        servings.append(serving)
        return Running(serving.ctx, registry, serving.address[1])

    yield run
    for s in reversed(servings):
        await s.close()


async def _call(
    url: str, method: str = "GET", **kw: Any
) -> tuple[int, aiohttp.typedefs.CIMultiDictProxy[str], bytes]:
    async with aiohttp.ClientSession() as s, s.request(method, url, **kw) as r:
        return r.status, r.headers, await r.read()


async def test_location_from_body_fills_a_missing_location_and_the_finding_stays(
    flaky: Flaky, run_config: Start
) -> None:
    flaky.script(
        "/orders", answer(201, b'{"id": 42, "name": "x"}', Content_Type="application/json")
    )
    proxy = await run_config(SPEC_EXAMPLE, flaky.url)
    status, headers, body = await _call(proxy.url + "/orders", "POST", json={"name": "x"})
    assert status == 201
    assert headers["Location"] == "/orders/42"
    assert headers["Cache-Control"] == "no-store"
    assert body == b'{"id": 42, "name": "x"}'
    await asyncio.sleep(0.05)
    (done,) = proxy.seen
    assert "ARP.03.LOCATION-201" in {f.rule for f in done.findings}  # judged on the original
    assert done.exchange.response.header("Location") is None
    entry = to_har_entry(done.exchange, done.findings, done.advice, profile_name="digg",
                         profile_version="x", redaction=Redaction.build())  # fmt: skip
    rewritten = entry["_audit"]["rewritten"]
    assert {"name": "Location", "value": "/orders/42"} in rewritten["headers"]
    assert rewritten["rules"] == ["location-for-created:location_from_body", "no-store:set_header"]
    assert proxy.rewrites("location-for-created", "location_from_body") == 1


async def test_header_actions_apply_on_every_status(flaky: Flaky, run_config: Start) -> None:
    flaky.script("/orders/1", answer(500, X_Powered_By="php", Server="nginx"))
    flaky.script("/orders/2", answer(405))
    proxy = await run_config(SPEC_EXAMPLE, flaky.url)
    status, headers, _ = await _call(proxy.url + "/orders/1")
    assert status == 500
    assert "X-Powered-By" not in headers
    assert "Server" not in headers
    assert headers["Cache-Control"] == "no-store"
    status, headers, _ = await _call(proxy.url + "/orders/2", "DELETE")
    assert status == 405
    assert headers["Allow"] == "GET, POST"


async def test_cors_origin_only_for_listed_origins(flaky: Flaky, run_config: Start) -> None:
    flaky.script("/x", answer(200, Access_Control_Allow_Origin="*"))
    proxy = await run_config(SPEC_EXAMPLE, flaky.url)
    _, listed, _ = await _call(proxy.url + "/x", headers={"Origin": "https://app.example"})
    assert listed["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Origin" in listed["Vary"]
    _, other, _ = await _call(proxy.url + "/x", headers={"Origin": "https://evil.example"})
    assert other["Access-Control-Allow-Origin"] == "*"


async def test_map_status_dry_run_counts_but_does_not_apply(
    flaky: Flaky, run_config: Start
) -> None:
    flaky.script("/things/1", answer(200, b""))
    proxy = await run_config(SPEC_EXAMPLE, flaky.url)
    status, _, _ = await _call(proxy.url + "/things/1", "DELETE")
    assert status == 200
    assert proxy.rewrites("empty-delete", "dry_run") == 1
    assert proxy.rewrites("empty-delete", "map_status") == 0


async def test_map_status_applied_sends_a_bodiless_204(flaky: Flaky, run_config: Start) -> None:
    config = SPEC_EXAMPLE.replace("    dry_run: true ", "    dry_run: false")
    flaky.script("/things/1", answer(200, b""))
    proxy = await run_config(config, flaky.url)
    raw = await raw_request(
        proxy.port, b"DELETE /things/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    lines = head_lines(raw)
    assert lines[0].startswith("HTTP/1.1 204")
    assert not any(
        line.lower().startswith(("content-length", "transfer-encoding")) for line in lines
    )
    assert raw.endswith(b"\r\n\r\n")
    assert proxy.rewrites("empty-delete", "map_status") == 1


async def test_a_body_rule_is_skipped_when_the_body_was_not_held(
    flaky: Flaky, run_config: Start
) -> None:
    big = json.dumps({"id": 7, "pad": "x" * 40_000}).encode()
    flaky.script("/orders", answer(201, big, Content_Type="application/json"))
    proxy = await run_config(SPEC_EXAMPLE, flaky.url)
    status, headers, body = await _call(proxy.url + "/orders", "POST", json={})
    assert status == 201
    assert "Location" not in headers
    assert body == big  # the whole body, framing intact
    assert proxy.rewrites("location-for-created", "skipped") == 1


async def test_a_header_a_rule_sets_is_never_filtered_out(flaky: Flaky, run_config: Start) -> None:
    config = """\
rewrite:
  - name: brand
    set_header: {Server: auditproxy-gateway, Content-Type: application/json}
"""
    flaky.script("/x", answer(200, b"{}"))  # sends neither Server nor Content-Type
    proxy = await run_config(config, flaky.url)
    _, headers, _ = await _call(proxy.url + "/x")
    assert headers["Server"] == "auditproxy-gateway"
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("mode", "debug", "want"),
    [("true", False, True), ("false", False, False), ("request", False, False),
     ("request", True, True)],
)  # fmt: skip
async def test_annotate_modes(
    flaky: Flaky, run_config: Start, mode: str, debug: bool, want: bool
) -> None:
    flaky.script("/x", answer(503))  # no Retry-After, no Content-Type: findings
    proxy = await run_config(f"annotate: {mode}\n", flaky.url)
    extra = {"X-Audit-Debug": "1"} if debug else {}
    _, headers, _ = await _call(proxy.url + "/x", headers=extra)
    value = headers.get("X-Audit-Findings")
    assert (value is not None) is want
    if want:
        assert value is not None
        assert "RFC9110-503-RETRY-AFTER" in value
        assert value.isascii()
        assert len(value) <= 512
