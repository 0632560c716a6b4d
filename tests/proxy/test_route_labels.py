"""Route labels cannot be used up by scanners: 404s on uncovered paths and the
proxy's refusals take no new label, and dot-segments are removed first."""

from __future__ import annotations

import aiohttp

from auditproxy.core.routes import OTHER, RouteLabeler, remove_dot_segments

from .conftest import Proxy, ProxyFactory, Upstream, raw_request


def test_remove_dot_segments() -> None:
    assert remove_dot_segments("/a/./b/../c") == "/a/c"
    assert remove_dot_segments("/../../etc/passwd") == "/etc/passwd"
    assert remove_dot_segments("/%2e%2E/x") == "/x"
    assert remove_dot_segments("/a/b/..") == "/a/"
    assert remove_dot_segments("/orders/1") == "/orders/1"


def test_no_allocation_without_evidence_the_path_exists() -> None:
    labeler = RouteLabeler(["/known/{id}"], max_routes=2)
    assert labeler.label("/scan/1.php", allocate=False) == OTHER
    assert labeler.distinct == 0
    assert labeler.label("/known/7", allocate=False) == "/known/{id}"  # templates always match
    assert labeler.label("/real", allocate=True) == "/real"
    assert labeler.label("/real", allocate=False) == "/real"  # an existing label is reused
    assert labeler.label("/scan/1.php", allocate=True) == "/scan/1.php"  # not cached as other


async def test_scanner_404s_do_not_exhaust_route_labels(
    upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    proxy: Proxy = await make_proxy(upstream.url, max_routes="5")
    async with aiohttp.ClientSession() as s:
        for i in range(40):
            async with s.get(f"{proxy.url}/scan/wp-admin-{i}.php") as r:
                assert r.status == 404
        async with s.get(f"{proxy.url}/bytes/12") as r:
            assert r.status == 200
    labels = {"route": "/bytes/{id}", "method": "GET", "status": "200", "compliant": "false"}
    ok = proxy.sample("auditproxy_requests_total", labels) + proxy.sample(
        "auditproxy_requests_total", {**labels, "compliant": "true"}
    )
    assert ok == 1
    assert proxy.ctx.runtime.labeler.distinct == 1
    scans = proxy.sample(
        "auditproxy_requests_total",
        {"route": OTHER, "method": "GET", "status": "404", "compliant": "true"},
    ) + proxy.sample(
        "auditproxy_requests_total",
        {"route": OTHER, "method": "GET", "status": "404", "compliant": "false"},
    )
    assert scans == 40


async def test_dot_segments_never_become_a_label(proxy: Proxy) -> None:
    raw = await raw_request(proxy.port, b"GET /a/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 ")
    labels = proxy.ctx.runtime.labeler._labels
    assert not any(".." in label for label in labels)
