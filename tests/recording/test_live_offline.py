"""Live and offline judge alike: traffic recorded through a real `auditproxy serve`
process, audited again offline with the same config, gives every exchange the same
findings and route it got live, including ARP.01's verdict on a `public` route's
neighbours (``/orders`` is public; ``/ordersx`` is not under it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from auditproxy.offline import audit_entry, load_context
from tests.recording.proxyproc import recorded_lines, serve_config

WILDCARD = "ARP.01.CORS-WILDCARD"
# Targets under the public prefix, and ones that only share its first characters.
UNDER = ("/orders", "/orders/1", "/orders/", "/orders%2F2", "/orders/1?x=y")
BESIDE = ("/ordersx", "/ordersx/1", "/orders-archive", "/order", "/other", "/orders%78")


async def _cors_upstream(aiohttp_server: Any) -> str:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"ok": True}, headers={"Access-Control-Allow-Origin": "*"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}"


def _verdict(findings: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((f["rule"], f["severity"], f["message"], f.get("header")) for f in findings)


def _without_live_labels(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry as a foreign HAR would carry it: no route or public flag to reuse."""
    audit = {k: v for k, v in entry["_audit"].items() if k not in ("route", "public")}
    return {**entry, "_audit": audit}


async def test_offline_audit_of_a_recording_agrees_with_live(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    upstream = await _cors_upstream(aiohttp_server)
    rec = tmp_path / "rec"
    config = tmp_path / "auditproxy.yaml"
    config.write_text(
        "routes:\n"
        f"  - {{prefix: /orders, upstream: '{upstream}', public: true,"
        " templates: ['/orders/{id}']}\n"
        f"  - {{prefix: /, upstream: '{upstream}'}}\n"
        f"record: {{enabled: true, dir: '{rec}'}}\n"
        "log: {level: info, format: json}\n"
    )
    proxy = await serve_config(config)
    try:
        async with aiohttp.ClientSession() as s:
            for target in UNDER + BESIDE:
                url = URL(f"http://127.0.0.1:{proxy.port}{target}", encoded=True)
                async with s.get(url) as r:
                    assert r.status == 200, target
                    await r.read()
        await proxy.wait_completed(len(UNDER + BESIDE))
        assert await proxy.stop() == 0
    finally:
        await proxy.kill()
    logged = {e["request_id"]: e for e in proxy.completed()}

    lines = recorded_lines(rec)
    assert len(lines) == len(UNDER + BESIDE)
    by_target = {URL(e["request"]["url"], encoded=True).raw_path_qs: e for e in lines}
    # The distinction matters: the wildcard is a finding beside the prefix, not under it.
    for target in UNDER:
        assert WILDCARD not in {f["rule"] for f in by_target[target]["_audit"]["findings"]}
    for target in BESIDE:
        assert WILDCARD in {f["rule"] for f in by_target[target]["_audit"]["findings"]}

    ctx = load_context(str(config))
    for i, entry in enumerate(lines):
        live = entry["_audit"]
        assert logged[live["request_id"]]["route"] == live["route"]
        for seen in (entry, _without_live_labels(json.loads(json.dumps(entry)))):
            offline = audit_entry(ctx, f"line {i + 1}", seen)
            where = entry["request"]["url"]
            assert offline.route == live["route"], where
            assert offline.exchange.public == live["public"], where
            assert _verdict([f.as_dict() for f in offline.findings]) == _verdict(
                live["findings"]
            ), where
