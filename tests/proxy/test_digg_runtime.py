"""The rest of the DIGG profile at run time, end to end: the sample upstream's rows for
each rule group sent through a real proxy on 127.0.0.1 (recording on), then judged from
what the proxy itself shows: /-/findings, /-/report, /metrics and the recording."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from auditproxy.sample_upstream import Endpoint, endpoint, make_sample_app

from .conftest import Proxy, ProxyFactory

GROUPS: dict[str, tuple[str, ...]] = {
    "urls": ("line-items-underscore", "shipping-label-camel-path", "search-long-url"),
    "security": ("documents-basic-challenge", "label-token-scheme", "export-api-key-in-query",
                 "audit-500-stack-trace"),
    "tracing": ("status-no-traceparent", "timeline-request-id-only", "trace-new-trace-id"),
    "payloads": ("discounts-mixed-naming", "tags-bad-field-names", "invoice-xml",
                 "customer-camel-case"),
    "dates": ("delivery-bad-dates",),
    "versions": ("legacy-unversioned", "archive-bad-deprecation", "v2-api-info-missing",
                 "api-info"),
    "requests": ("comment-text-plain-accepted", "memo-latin1-accepted", "invoice-xml"),
}  # fmt: skip
# Conforming rows sent alongside: none of the new rules may fire on them.
CLEAN = ("get-order", "list-orders", "create-order", "api-info")
SECRETS = ("demo-secret-key", "demo-token-123")


async def _send(proxy: Proxy, rows: list[Endpoint], repeat: int = 1) -> dict[str, Endpoint]:
    """Send each row ``repeat`` times (other order ids); request id -> row."""
    sent: dict[str, Endpoint] = {}
    async with aiohttp.ClientSession() as session:
        for row in rows:
            for i in range(repeat):
                path = re.sub(r"/42(/|$)", f"/{42 + i}\\1", row.path, count=1)
                rid = f"test-{len(sent)}"  # the proxy adopts the client's request id
                headers = {**row.request_headers(), "X-Request-Id": rid}
                async with session.request(
                    row.method, proxy.url + path, data=row.body, headers=headers
                ) as resp:
                    await resp.read()
                    assert resp.status == row.status, (row.name, await resp.text())
                    sent[rid] = row
    return sent


async def _admin(proxy: Proxy, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(proxy.admin_url + path) as r:
        return json.loads(await r.read()) if path != "/metrics" else await r.text()


@pytest.fixture
async def digg_proxy(
    make_proxy: ProxyFactory,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    tmp_path: Path,
) -> Proxy:
    upstream = await aiohttp_server(make_sample_app(), host="127.0.0.1")
    return await make_proxy(
        f"http://127.0.0.1:{upstream.port}",
        record__enabled=True,
        record__dir=str(tmp_path / "rec"),
    )


def _rules_by_row(recent: list[dict[str, Any]], sent: dict[str, Endpoint]) -> dict[str, set[str]]:
    """The must/should rules found per sample row (the proxy's request ids tell them apart)."""
    out: dict[str, set[str]] = {row.name: set() for row in sent.values()}
    for f in recent:
        if f["severity"] in ("must", "should"):
            out[sent[f["request_id"]].name].add(f["rule"])
    return out


@pytest.mark.parametrize("group", list(GROUPS))
async def test_each_group_is_reported_through_the_proxy(
    digg_proxy: Proxy, group: str, tmp_path: Path
) -> None:
    """Every row of the group gets exactly the must/should rules the sample table lists
    (the conforming rows none), counted in /metrics and listed in /-/report."""
    rows = [endpoint(n) for n in GROUPS[group]]
    clean = [endpoint(n) for n in CLEAN]
    sent = await _send(digg_proxy, [*rows, *clean])
    recent = (await _admin(digg_proxy, "/-/findings?limit=1000"))["findings"]
    found = _rules_by_row(recent, sent)
    for row in [*rows, *clean]:
        assert found[row.name] == set(row.rules), row.name
    report = await _admin(digg_proxy, "/-/report")
    metrics = await _admin(digg_proxy, "/metrics")
    for rule in {r for row in rows for r in row.rules}:
        assert rule in report["rules"], rule
        assert f'rule="{rule}"' in metrics, rule


async def test_url_rules_once_per_route_in_the_report_every_time_in_metrics(
    digg_proxy: Proxy,
) -> None:
    """Three requests with different ids on one badly named route: the report counts the
    route once, the metrics count all three exchanges."""
    row = endpoint("line-items-underscore")
    await _send(digg_proxy, [row], repeat=3)
    report = await _admin(digg_proxy, "/-/report")
    rule = report["rules"]["UFN.09.NO-UNDERSCORE-SPACE"]
    assert (rule["count"], rule["per"]) == (1, "route")
    assert report["routes"][row.route]["exchanges"] == 3
    labels = {"rule": "UFN.09.NO-UNDERSCORE-SPACE", "severity": "must", "route": row.route,
              "method": "GET", "status": "200", "origin": "upstream"}  # fmt: skip
    assert digg_proxy.sample("auditproxy_findings_total", labels) == 3


async def test_secrets_stay_redacted_everywhere(digg_proxy: Proxy, tmp_path: Path) -> None:
    """The query API key and the Authorization credentials of the security rows appear in
    no output: findings, report, metrics, recording."""
    rows = [endpoint(n) for n in GROUPS["security"]]
    await _send(digg_proxy, rows)
    outputs = [
        json.dumps(await _admin(digg_proxy, "/-/findings?limit=1000")),
        json.dumps(await _admin(digg_proxy, "/-/report")),
        await _admin(digg_proxy, "/metrics"),
    ]
    assert digg_proxy.ctx.recorder is not None
    await digg_proxy.ctx.recorder.close()
    recording = "".join(p.read_text("utf-8") for p in (tmp_path / "rec").rglob("*.jsonl"))
    assert "SAK.15.NO-KEY-IN-URL" in recording  # the rows were recorded
    assert "REDACTED" in recording
    for text in (*outputs, recording):
        for secret in SECRETS:
            assert secret not in text


async def test_report_names_the_naming_minority_and_unseen_api_info(digg_proxy: Proxy) -> None:
    """The per-API part of /-/report: /v1 is snake_case with a camelCase minority named by
    an example field; /v1 answered its api-info, /legacy never did."""
    names = ("api-info", "line-items-underscore", "shipping-label-camel-path",
             "customer-camel-case", "legacy-unversioned", "get-order")  # fmt: skip
    await _send(digg_proxy, [endpoint(n) for n in names])
    apis = (await _admin(digg_proxy, "/-/report"))["apis"]
    minority = apis["/v1"]["naming"]["minority"]
    assert apis["/v1"]["naming"]["convention"] == "snake_case"
    assert minority["convention"] == "camelCase"
    assert minority["example"] in ("customerId", "fullName", "emailAddress")
    assert minority["route"] == endpoint("customer-camel-case").route
    assert apis["/v1"]["api_info"] == "seen"
    assert apis["/legacy"]["api_info"] == "never seen"
