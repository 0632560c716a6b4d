"""The admin server: /metrics, /healthz, /readyz, /-/findings, /-/report, /-/reload."""

from __future__ import annotations

import re
import socket
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from auditproxy.admin import REPORT_TYPES, preferred_type
from auditproxy.server import loader_for
from tests.proxy.conftest import Proxy, ProxyFactory, Upstream

SPEC_FAMILIES = {
    "auditproxy_requests",
    "auditproxy_findings",
    "auditproxy_noncompliant_status",
    "auditproxy_missing_headers",
    "auditproxy_upstream_duration_seconds",
    "auditproxy_proxy_overhead_seconds",
    "auditproxy_upstream_errors",
    "auditproxy_in_flight_requests",
    "auditproxy_build_info",
}


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.text()


async def test_metrics_parse_and_have_spec_names(proxy: Proxy) -> None:
    """/metrics is Prometheus text with the SPEC §7 names after one request."""
    await _get(f"{proxy.url}/status/201")
    status, text = await _get(f"{proxy.admin_url}/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families.keys() >= SPEC_FAMILIES
    requests = [s for s in families["auditproxy_requests"].samples if s.name.endswith("_total")]
    assert any(s.labels["status"] == "201" and s.labels["method"] == "GET" for s in requests)
    build = families["auditproxy_build_info"].samples[0]
    assert build.value == 1
    assert build.labels["profile"] == "digg"


async def test_healthz_and_readyz(proxy: Proxy) -> None:
    """/healthz says ok; /readyz is ready when the upstream accepts connections."""
    assert (await _get(f"{proxy.admin_url}/healthz"))[0] == 200
    status, text = await _get(f"{proxy.admin_url}/readyz")
    assert status == 200, text


async def test_readyz_503_when_upstream_down(make_proxy: ProxyFactory) -> None:
    """/readyz answers 503 with a reason naming the unreachable upstream."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proxy = await make_proxy(f"http://127.0.0.1:{port}")
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.admin_url}/readyz") as r:
        doc = await r.json()
    assert r.status == 503
    assert str(port) in doc["reasons"][0]


async def test_recent_findings_newest_first(proxy: Proxy) -> None:
    """/-/findings lists recent findings, newest first, limited by ?limit."""
    await _get(f"{proxy.url}/status/405")
    await _get(f"{proxy.url}/status/418")
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.admin_url}/-/findings?limit=1") as r:
        doc = await r.json()
    assert len(doc["findings"]) == 1
    assert doc["findings"][0]["status"] == 418


async def test_report_counts_exchanges(proxy: Proxy) -> None:
    """/-/report summarises the exchanges seen so far."""
    await _get(f"{proxy.url}/status/200")
    status, text = await _get(f"{proxy.admin_url}/-/report")
    assert status == 200
    assert '"exchanges": 1' in text


async def test_report_answers_html_to_a_browser_and_text_on_request(proxy: Proxy) -> None:
    """A browser's Accept gets the HTML page under its CSP; text/plain the text tables;
    curl's */* still the JSON."""
    await _get(f"{proxy.url}/status/405")
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{proxy.admin_url}/-/report", headers={"Accept": browser}) as r:
            page = await r.text()
            assert r.status == 200
            assert r.content_type == "text/html"
            assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
            assert r.headers["Vary"] == "Accept"
        assert '<div class="value" id="n-exchanges">1</div>' in page
        assert 'href="#rule-RFC9110-405-ALLOW"' in page
        assert "live traffic since the proxy started" in page
        async with s.get(f"{proxy.admin_url}/-/report", headers={"Accept": "text/plain"}) as r:
            assert r.content_type == "text/plain"
            assert "1 exchanges audited against profile digg" in await r.text()
        async with s.get(f"{proxy.admin_url}/-/report", headers={"Accept": "*/*"}) as r:
            assert r.content_type == "application/json"
            doc = await r.json()
    assert doc["totals"]["exchanges"] == 1
    assert "GET 405" not in doc["coverage"]["never"]["matrix"]
    assert "DELETE 405" in doc["coverage"]["never"]["matrix"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", "application/json"),
        ("*/*", "application/json"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"),
        ("application/json, text/html;q=0.5", "application/json"),
        ("text/*;q=0.5, text/plain", "text/plain"),
        ("text/*, text/html;q=0", "text/plain"),
        ("image/png", "application/json"),
        ("text/html;q=bogus, */*;q=0.1", "application/json"),
    ],
)
def test_preferred_type(accept: str, expected: str) -> None:
    """The most specific matching range sets an offer's q; ties and no match go to JSON."""
    assert preferred_type(accept, REPORT_TYPES) == expected


async def test_reload_endpoint_keeps_old_config_on_error(
    tmp_path: Path, upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    """POST /-/reload with an invalid file answers 400 with the error and keeps the old runtime."""
    f = tmp_path / "c.yaml"
    f.write_text(f"upstream: {upstream.url}\nannotate: true\n")
    proxy = await make_proxy(upstream.url)
    proxy.ctx.loader = loader_for(str(f), {})
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{proxy.admin_url}/-/reload") as r:
            assert r.status == 200
        assert proxy.ctx.runtime.settings.annotate
        f.write_text("upstream: http://a:1\ntimeouts: {connect: never}\n")
        async with s.post(f"{proxy.admin_url}/-/reload") as r:
            doc = await r.json()
        assert r.status == 400
        assert "timeouts.connect" in doc["error"]
    assert proxy.ctx.runtime.settings.upstream == upstream.url


async def test_findings_times_are_rfc3339(proxy: Proxy) -> None:
    """/-/findings on a real proxy gives each finding's time as RFC 3339 UTC."""
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{proxy.url}/status/418") as r:
            await r.read()
        async with s.get(f"{proxy.admin_url}/-/findings?limit=5") as r:
            doc = await r.json()
    times = [f["time"] for f in doc["findings"]]
    assert times
    for t in times:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", t), t
        assert abs(datetime.fromisoformat(t).timestamp() - datetime.now().timestamp()) < 60
