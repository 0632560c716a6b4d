"""Static checks of the deployment files: Dockerfile, compose, Kubernetes, Prometheus, Grafana.

No Docker engine is needed: the files are parsed and cross-checked against the
config files they serve, and promtool validates the Prometheus side.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import CollectorRegistry

from auditproxy.settings import load_settings
from auditproxy.sinks.metrics import Metrics

from .promql import (
    ALERTS,
    PROMETHEUS_DIR,
    ROOT,
    alert_queries,
    alert_rules,
    all_dashboard_queries,
    dashboard_files,
    dashboard_queries,
    load_dashboard,
    metric_names,
    substitute,
)

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian package prometheus; .ci/run installs it)",
)
DOCKER_CONFIG = ROOT / "config" / "docker" / "auditproxy.yaml"
COMPOSE_SERVICES = {"upstream", "auditproxy", "traffic", "prometheus", "grafana"}


# ---------------------------------------------------------------- helpers


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def instructions(name: str) -> list[str]:
    return [args for word, args in dockerfile() if word == name]


def docker_settings() -> Any:
    return load_settings(str(DOCKER_CONFIG))


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    return data


def k8s() -> dict[str, dict[str, Any]]:
    docs = yaml.safe_load_all((ROOT / "config/kubernetes/sidecar.yaml").read_text("utf-8"))
    return {d["kind"]: d for d in docs if d}


def spec_metric_names() -> set[str]:
    """Every sample name the SPEC §7 metric families expose."""
    registry = CollectorRegistry()
    Metrics(registry)
    names = set()
    for family in registry.collect():
        names.add(family.name)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        for suffix in suffixes.get(family.type, [""]):
            names.add(family.name + suffix)
    return names


# ---------------------------------------------------------------- Dockerfile


def test_dockerfile_copies_only_existing_files_not_ignored() -> None:
    """Every file the Dockerfile COPYs from the build context exists and is not in .dockerignore."""
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    copies = [a for a in instructions("COPY") if "--from" not in a]
    assert copies, "the Dockerfile copies nothing from the build context"
    for args in copies:
        *sources, _dest = shlex.split(args)
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: no such file in the repository"
            assert src.rstrip("/") not in ignored, f"COPY {src}: excluded by .dockerignore"
            assert src.split("/")[0] not in ignored, f"COPY {src}: excluded by .dockerignore"


def test_dockerfile_is_multistage_and_installs_only_built_wheels() -> None:
    """The builder stage makes wheels, the final slim stage installs them from a bind mount."""
    froms = instructions("FROM")
    assert len(froms) == 2
    assert froms[0].endswith(" AS builder")
    assert froms[1] == "python:3.11-slim"
    runs = instructions("RUN")
    wheel_dir = re.search(r"pip wheel --wheel-dir (\S+)", " ".join(runs))
    assert wheel_dir, "the builder does not run `pip wheel --wheel-dir DIR`"
    install = [r for r in runs if "pip install" in r]
    assert len(install) == 1
    assert f"from=builder,source={wheel_dir.group(1)}," in install[0]
    assert "--no-index" in install[0], "the final stage must not fetch anything but the wheels"


def test_dockerfile_runtime_contract_matches_config() -> None:
    """Ports, config path, volume, user, healthcheck and entrypoint agree with the image config."""
    s = docker_settings()
    exposed = {int(p) for a in instructions("EXPOSE") for p in a.split()}
    assert exposed == {s.listen.port, s.admin.port}
    assert s.admin.host == "0.0.0.0", "admin must be reachable from outside the container"
    copy_config = [a for a in instructions("COPY") if "config/docker/auditproxy.yaml" in a]
    assert len(copy_config) == 1
    config_path = shlex.split(copy_config[0])[-1]
    assert instructions("ENTRYPOINT") == ['["auditproxy"]']
    assert instructions("CMD") == [f'["serve", "--config", "{config_path}"]']
    assert config_path == "/etc/auditproxy/auditproxy.yaml"
    assert s.record.enabled
    assert instructions("VOLUME") == [f'["{s.record.dir}"]']
    users = instructions("USER")
    assert users
    assert users[-1] not in ("root", "0")
    (health,) = instructions("HEALTHCHECK")
    assert f"http://127.0.0.1:{s.admin.port}/healthz" in health
    assert "curl" not in health, "the slim image has no curl"
    assert "wget" not in health, "the slim image has no wget"


# ---------------------------------------------------------------- compose


def test_compose_services_and_mounts() -> None:
    """Compose defines the documented services and every bind mount points at a repo file."""
    c = compose()
    assert set(c["services"]) == COMPOSE_SERVICES
    docs = (ROOT / "docs" / "deploy.md").read_text("utf-8")
    for name in COMPOSE_SERVICES:
        assert f"`{name}`" in docs, f"docs/deploy.md does not describe service {name}"
    binds = 0
    for name, svc in c["services"].items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                binds += 1
                assert (ROOT / src).exists(), f"{name}: mounts {src}, which does not exist"
            else:
                assert src in c["volumes"], f"{name}: named volume {src} is not declared"
    assert binds >= 4


def test_compose_wiring_agrees_with_config() -> None:
    """Ports, service names and paths in compose match the proxy, Prometheus and Grafana configs."""
    c = compose()
    svc = c["services"]
    s = docker_settings()
    # The proxy publishes its traffic and admin ports and records to a named volume.
    assert {f"{s.listen.port}:{s.listen.port}", f"{s.admin.port}:{s.admin.port}"} <= set(
        svc["auditproxy"]["ports"]
    )
    assert f"recordings:{s.record.dir}" in svc["auditproxy"]["volumes"]
    assert "entrypoint" not in svc["auditproxy"]
    assert "command" not in svc["auditproxy"]
    # The config's upstream is the upstream service on the port it listens on.
    up = urlsplit(s.upstream)
    assert up.hostname == "upstream"
    cmd = svc["upstream"]["command"]
    assert cmd[cmd.index("--port") + 1] == str(up.port)
    assert svc["upstream"]["entrypoint"][-1] == "auditproxy.sample_upstream"
    # The traffic generator targets the proxy's traffic port.
    tcmd = svc["traffic"]["command"]
    assert tcmd[tcmd.index("--target") + 1] == f"http://auditproxy:{s.listen.port}"
    # Prometheus scrapes the admin port and loads the alert rules.
    prom = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text("utf-8"))
    targets = [
        t for sc in prom["scrape_configs"] for g in sc["static_configs"] for t in g["targets"]
    ]
    assert f"auditproxy:{s.admin.port}" in targets
    assert "alerts.yml" in prom["rule_files"]
    assert "./config/prometheus:/etc/prometheus:ro" in svc["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in svc["prometheus"]["command"]
    # Grafana: datasource points at the prometheus service, dashboards at the mounted folder.
    prov = ROOT / "config/grafana/provisioning"
    ds = yaml.safe_load((prov / "datasources/prometheus.yml").read_text("utf-8"))["datasources"][0]
    assert urlsplit(ds["url"]).hostname == "prometheus"
    assert urlsplit(ds["url"]).port == 9090
    assert "9090:9090" in svc["prometheus"]["ports"]
    provider = yaml.safe_load((prov / "dashboards/auditproxy.yml").read_text("utf-8"))
    path = provider["providers"][0]["options"]["path"]
    assert f"./dashboards:{path}:ro" in svc["grafana"]["volumes"]
    home = svc["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path + "/")
    assert (ROOT / "dashboards" / Path(home).name).exists()


# ---------------------------------------------------------------- Kubernetes


def test_kubernetes_sidecar_agrees_with_its_config(tmp_path: Path) -> None:
    """Container ports, probes, annotations and the Service match the ConfigMap's proxy config."""
    docs = k8s()
    assert set(docs) == {"ConfigMap", "Deployment", "Service"}
    cfg_file = tmp_path / "auditproxy.yaml"
    cfg_file.write_text(docs["ConfigMap"]["data"]["auditproxy.yaml"], encoding="utf-8")
    s = load_settings(str(cfg_file))
    pod = docs["Deployment"]["spec"]["template"]
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    proxy, app = containers["auditproxy"], containers["app"]
    ports = {p["name"]: p["containerPort"] for p in proxy["ports"]}
    assert ports == {"http": s.listen.port, "admin": s.admin.port}
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    ann = pod["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/port"] == str(s.admin.port)
    assert ann["prometheus.io/path"] == "/metrics"
    # The proxy reads the ConfigMap where its args say, and forwards to the app on localhost.
    mount = next(m for m in proxy["volumeMounts"] if m["name"] == "config")
    assert proxy["args"] == ["serve", "--config", f"{mount['mountPath']}/auditproxy.yaml"]
    up = urlsplit(s.upstream)
    assert up.hostname == "127.0.0.1"
    assert app["args"] == ["--host", "127.0.0.1", "--port", str(up.port)]
    rec = next(m for m in proxy["volumeMounts"] if m["name"] == "recordings")
    assert rec["mountPath"] == s.record.dir
    # The Service reaches the pod only through the proxy.
    (svc_port,) = docs["Service"]["spec"]["ports"]
    assert svc_port["targetPort"] == "http"
    selector = docs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert docs["Service"]["spec"]["selector"] == selector


# ---------------------------------------------------------------- Prometheus


def _promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@needs_promtool
def test_promtool_accepts_scrape_config() -> None:
    """`promtool check config` accepts config/prometheus/prometheus.yml (and its rule files)."""
    r = _promtool("check", "config", "prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr


@needs_promtool
def test_promtool_accepts_alert_rules() -> None:
    """`promtool check rules` accepts alerts.yml."""
    r = _promtool("check", "rules", "alerts.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(alert_rules())} rules found" in r.stdout


@needs_promtool
def test_promtool_alert_unit_tests_pass() -> None:
    """`promtool test rules alerts.test.yml` passes: each alert fires on bad data, not on good."""
    r = _promtool("test", "rules", "alerts.test.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    tested = set(re.findall(r"alertname: (\w+)", (PROMETHEUS_DIR / "alerts.test.yml").read_text()))
    assert tested == {r["alert"] for r in alert_rules()}


def test_alert_rules_say_what_to_do() -> None:
    """Every alert has a severity label and a summary and a description annotation."""
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert len(rule["annotations"]["description"]) > 80, rule["alert"]


# ---------------------------------------------------------------- dashboards


def test_dashboards_use_only_spec_metrics() -> None:
    """Every dashboard and alert expression names only SPEC §7 metrics."""
    known = spec_metric_names()
    queries = all_dashboard_queries() + alert_queries()
    assert len(queries) > 20
    for q in queries:
        unknown = metric_names(q.expr) - known
        assert not unknown, f"{q.source}: unknown metrics {unknown}"


@needs_promtool
def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Every dashboard expression, variables substituted, is valid PromQL for promtool."""
    queries = all_dashboard_queries()
    rules = [
        {"record": f"dashboard:query_{i}", "expr": substitute(q.expr, {"route": "/orders/{id}"})}
        for i, q in enumerate(queries)
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    r = _promtool("check", "rules", str(path), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dashboards_are_provisionable() -> None:
    """Dashboard uids are unique; panels use a datasource variable set to the provisioned uid."""
    ds = yaml.safe_load(
        (ROOT / "config/grafana/provisioning/datasources/prometheus.yml").read_text("utf-8")
    )["datasources"][0]
    uids = set()
    for path in dashboard_files():
        d = load_dashboard(path)
        assert d["uid"] not in uids
        uids.add(d["uid"])
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["current"]["value"] == ds["uid"]
        for q in dashboard_queries(path):
            assert "$" not in q.expr.replace("$__", "").replace("${1}", "").replace("$route", ""), (
                q.source
            )
        panel_ids = [p["id"] for p in d["panels"]]
        assert len(panel_ids) == len(set(panel_ids)), f"{path.name}: duplicate panel ids"
        for p in d["panels"]:
            if p["type"] != "row":
                assert p["datasource"]["uid"] == "${datasource}", f"{path.name}: {p['title']}"
    assert uids == {"auditproxy-overview", "auditproxy-route"}


def test_route_dashboard_filters_every_query_by_route() -> None:
    """The route dashboard's `route` variable lists routes; every query filters by it."""
    path = ROOT / "dashboards" / "auditproxy-route.json"
    variables = {v["name"]: v for v in load_dashboard(path)["templating"]["list"]}
    assert variables["route"]["definition"] == "label_values(auditproxy_requests_total, route)"
    for q in dashboard_queries(path):
        assert 'route="$route"' in q.expr, q.source


def test_overview_covers_the_required_panels() -> None:
    """The overview has the panels the deployment docs promise (by the metrics they query)."""
    path = ROOT / "dashboards" / "auditproxy-overview.json"
    used = set().union(*(metric_names(q.expr) for q in dashboard_queries(path)))
    assert used >= {
        "auditproxy_requests_total", "auditproxy_findings_total",
        "auditproxy_missing_headers_total", "auditproxy_noncompliant_status_total",
        "auditproxy_upstream_duration_seconds_bucket", "auditproxy_proxy_overhead_seconds_bucket",
        "auditproxy_recorder_dropped_total", "auditproxy_upstream_errors_total",
        "auditproxy_build_info",
    }  # fmt: skip
    status_panel = next(
        p for p in load_dashboard(path)["panels"] if p["title"] == "Status codes per method"
    )
    assert "ARP.02" in status_panel["description"]


def test_alert_file_is_the_one_prometheus_loads() -> None:
    """The rule file the scrape config names is the one the tests read."""
    prom = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text("utf-8"))
    assert [PROMETHEUS_DIR / f for f in prom["rule_files"]] == [ALERTS]
