"""Every dashboard panel query and every alert expression, run against a real Prometheus.

A real Prometheus (Debian package, 1 s scrape interval) scrapes a real
``auditproxy serve`` subprocess in front of the sample upstream while the test
drives compliant and non-compliant traffic through the proxy (201 without
Location, 405 without Allow, 402, 418, 502 from a dead upstream, ...). The
dashboards and alerts.yml are parsed, their variables substituted, and each
expression must evaluate without error and return data, except the few listed
in ``NO_DATA`` with the reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from auditproxy.sample_upstream import ENDPOINTS

from .procs import (
    Prometheus,
    auditproxy_serve,
    free_port,
    http,
    http_ok,
    prometheus_server,
    sample_upstream,
    wait_until,
)
from .promql import ALERTS, Query, alert_queries, all_dashboard_queries, substitute
from .test_static import instructions

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="prometheus not installed (Debian package prometheus; .ci/run installs it)",
    ),
]

# A coarse template puts every /v1/orders/<id>/<part> path on one route, and a dead
# upstream serves /v1/orders/13, so that one route has compliant responses, missing
# headers, non-compliant status codes and upstream errors: the route dashboard
# is exercised on a single value of its `route` variable.
ROUTE = "/v1/orders/{id}/{part}"
DEAD_PREFIX = "/v1/orders/13"

# Queries that legitimately return nothing in this run, and why. Listed ones
# must still evaluate without error; if one starts returning data, the test says
# so, so this list cannot go stale.
NO_DATA = {
    "auditproxy-overview.json: Rewrites by rule and action [A]":
        "no rewrite rule is configured in this run (SPEC §11 is off by default)",
    "alerts.yml: AuditproxyRecorderDropping":
        "the recorder keeps up with the test's traffic, so nothing is dropped",
    "alerts.yml: AuditproxyRetryBudgetExhausted":
        "no retry is refused by the budget in a run this small",
    "alerts.yml: AuditproxyDown":
        "the proxy is up; this alert fires only when the scrape fails",
}  # fmt: skip


@dataclass
class Run:
    prom: Prometheus
    admin: str
    sent: int
    statuses: dict[str, int] = field(default_factory=dict)
    results: dict[str, list[dict[str, Any]] | str] = field(default_factory=dict)
    rules: list[dict[str, Any]] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)


def drive(proxy: str, run_statuses: dict[str, int]) -> int:
    """One pass over every sample endpoint plus the dead route; the number of requests."""
    sent = 0
    for e in ENDPOINTS:
        if e.path.startswith("/v1/bench/large"):
            continue
        headers = e.request_headers()
        status, _, _ = http(e.method, proxy + e.path, e.body, headers)
        assert status == e.status, f"{e.name}: got {status} through the proxy, want {e.status}"
        run_statuses[e.name] = status
        sent += 1
    for method, path in (("GET", f"{DEAD_PREFIX}/receipt"), ("POST", f"{DEAD_PREFIX}/payment")):
        status, _, _ = http(method, proxy + path)
        assert status == 502, f"{method} {path}: got {status} from a dead upstream, want 502"
        sent += 1
    return sent


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("live")
    up_port, dead_port, listen, admin = free_port(), free_port(), free_port(), free_port()
    config = tmp / "auditproxy.yaml"
    config.write_text(yaml.safe_dump({
        "listen": f"127.0.0.1:{listen}",
        "admin": f"127.0.0.1:{admin}",
        "upstream": f"http://127.0.0.1:{up_port}",
        "routes": [{"prefix": DEAD_PREFIX, "upstream": f"http://127.0.0.1:{dead_port}",
                    "templates": [ROUTE]}],
        "record": {"enabled": True, "dir": str(tmp / "recordings")},
        "retry": {"enabled": True, "backoff": {"base": "5ms", "max": "20ms"}},
        "timeouts": {"connect": "1s", "shutdown_grace": "5s"},
    }))  # fmt: skip
    with (
        sample_upstream(tmp / "upstream.log", up_port) as up,
        auditproxy_serve(tmp / "proxy.log", config) as proxy,
    ):
        wait_until("sample upstream", http_ok(f"http://127.0.0.1:{up_port}/v1/orders"), up, 20)
        admin_url = f"http://127.0.0.1:{admin}"
        wait_until("auditproxy", http_ok(admin_url + "/healthz"), proxy, 20)
        with prometheus_server(tmp, [f"127.0.0.1:{admin}"], [ALERTS]) as prom:
            r = Run(prom=prom, admin=admin_url, sent=0)
            base = f"http://127.0.0.1:{listen}"
            # Two bursts with a scrape in between, so rate() and increase() see growth.
            for _ in range(2):
                r.sent += drive(base, r.statuses)
                wait_until(
                    "prometheus seeing the traffic",
                    lambda: prom.scalar("sum(auditproxy_requests_total)") >= r.sent,
                    proxy,
                    15,
                )
            # Let the rule manager evaluate the alert rules on the new data.
            wait_until(
                "alert rules evaluated",
                lambda: all(
                    rule.get("lastEvaluation", "").startswith("2") and rule["health"] != "unknown"
                    for g in prom.get("/api/v1/rules")["groups"]
                    for rule in g["rules"]
                ),
                proxy,
                10,
            )
            for q in [*all_dashboard_queries(), *alert_queries()]:
                try:
                    r.results[q.source] = prom.query(substitute(q.expr, {"route": ROUTE}))
                except AssertionError as exc:
                    r.results[q.source] = str(exc)
            r.rules = [rule for g in prom.get("/api/v1/rules")["groups"] for rule in g["rules"]]
            r.routes = prom.get(
                "/api/v1/label/route/values", **{"match[]": "auditproxy_requests_total"}
            )
            yield r


QUERIES = [*all_dashboard_queries(), *alert_queries()]


@pytest.mark.parametrize("query", QUERIES, ids=[q.source for q in QUERIES])
def test_query_returns_data(run: Run, query: Query) -> None:
    """The panel or alert expression evaluates without error and returns data."""
    result = run.results[query.source]
    assert not isinstance(result, str), f"{query.source}: Prometheus error: {result}"
    if query.source in NO_DATA:
        assert result == [], (
            f"{query.source} now returns data; remove it from NO_DATA ({NO_DATA[query.source]})"
        )
    else:
        assert result, f"{query.source}: no data for {query.expr!r}"


def test_no_data_list_names_real_queries() -> None:
    """Every NO_DATA entry names an existing panel target or alert."""
    assert set(NO_DATA) <= {q.source for q in QUERIES}


def test_alert_rules_are_healthy_in_prometheus(run: Run) -> None:
    """Prometheus loaded every alert rule from alerts.yml and evaluates each without error."""
    names = {rule["name"] for rule in run.rules}
    want = {q.source.removeprefix("alerts.yml: ") for q in alert_queries()}
    assert names == want
    for rule in run.rules:
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"


def test_route_variable_lists_the_traffic_routes(run: Run) -> None:
    """The route variable's label_values query lists the routes the test drove."""
    assert ROUTE in run.routes
    assert "/v1/orders" in run.routes
    assert "/v1/orders/{id}" in run.routes


def proxy_total(admin: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` with ``labels`` on the proxy's own /metrics."""
    _, _, body = http("GET", admin + "/metrics")
    return sum(
        s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_prometheus_totals_match_the_traffic(run: Run) -> None:
    """Prometheus's counts equal the proxy's /metrics and the traffic the test sent."""
    assert run.prom.scalar("sum(auditproxy_requests_total)") == run.sent
    noncompliant = run.prom.scalar('sum(auditproxy_requests_total{compliant="false"})')
    assert 0 < noncompliant < run.sent
    assert noncompliant == proxy_total(run.admin, "auditproxy_requests_total", compliant="false")
    # two bursts, each: the GET to the dead route tried 3 times (retry on), the POST once
    assert run.prom.scalar('sum(auditproxy_upstream_errors_total{kind="connect"})') == 8
    retries = 'sum(auditproxy_retries_total{{reason="connect",outcome="{}"}})'
    assert run.prom.scalar(retries.format("retried")) == 4
    assert run.prom.scalar(retries.format("exhausted")) == 2
    assert run.prom.scalar(retries.format("not_retriable")) == 2
    allow = 'sum(auditproxy_missing_headers_total{header="Allow",status="405",method="DELETE"})'
    assert run.prom.scalar(allow) == 2


def test_image_healthcheck_passes_against_the_admin_port(run: Run) -> None:
    """The Dockerfile's HEALTHCHECK command succeeds against a running proxy's admin port."""
    (health,) = instructions("HEALTHCHECK")
    argv = json.loads(health[health.index("CMD") + 3 :].strip())
    port = run.admin.rsplit(":", 1)[1]
    code = argv[2].replace("127.0.0.1:9464", f"127.0.0.1:{port}")
    assert code != argv[2]
    r = subprocess.run(["python3", "-c", code], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
