"""deploy/: the compose file, Prometheus config and Dockerfile agree with each other and with the settings.

No Docker engine runs here, so these tests read the files: every router's environment must load into
``streams.settings.Settings`` and the topics the init container creates must be the contract's.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from streams.settings import BOOTSTRAP_ENV, ENV_PREFIX, Settings, load_settings
from streams.topics import TOPIC_KEYS, topic_names, topic_partitions
from tests.streams.sample import placement

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ROUTERS = ("router-1", "router-2")


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _service(name: str) -> dict[str, Any]:
    service = _compose()["services"][name]
    assert isinstance(service, dict)
    return service


def _env(name: str) -> dict[str, str]:
    """A service's environment as text, whether the file writes it as a mapping or as KEY=VALUE items."""
    raw = _service(name).get("environment", {})
    pairs = raw.items() if isinstance(raw, dict) else (item.split("=", 1) for item in raw)
    return {str(k): str(v) for k, v in pairs}


def _settings_for(name: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Load the settings exactly as the service's container would: only its environment is set."""
    for var in list(os.environ):
        if var.upper().startswith(ENV_PREFIX) or var.upper() == BOOTSTRAP_ENV:
            monkeypatch.delenv(var)
    for var, value in _env(name).items():
        monkeypatch.setenv(var, value)
    return load_settings()


def _container_port(mapping: str | dict[str, Any]) -> int:
    if isinstance(mapping, dict):
        return int(mapping["target"])
    return int(str(mapping).split("/")[0].rsplit(":", 1)[-1])


def _created_topics() -> dict[str, int]:
    """Topic name -> partitions, read from the kafka-topics.sh --create lines of the topics service."""
    command = _service("topics")["command"]
    script = command if isinstance(command, str) else "\n".join(command)
    created: dict[str, int] = {}
    for line in script.splitlines():
        if "kafka-topics.sh" in line and "--create" in line:
            topic = re.search(r"--topic\s+(\S+)", line)
            partitions = re.search(r"--partitions\s+(\d+)", line)
            assert topic, line
            assert partitions, line
            created[topic.group(1)] = int(partitions.group(1))
    return created


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of deploy/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_compose_has_kafka_topics_two_routers_and_prometheus() -> None:
    """The compose file parses and defines the broker, the topic initialiser, two routers and Prometheus."""
    services = _compose()["services"]
    assert {"kafka", "topics", *ROUTERS, "prometheus"} <= set(services)
    assert _service("prometheus")["image"].startswith("prom/prometheus:")


def test_kafka_runs_in_kraft_mode() -> None:
    """The broker is Apache Kafka in KRaft mode (combined broker and controller) with a health check."""
    kafka, env = _service("kafka"), _env("kafka")
    assert kafka["image"] == "apache/kafka:3.9.0"
    assert {"broker", "controller"} <= set(env["KAFKA_PROCESS_ROLES"].split(","))
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in env["KAFKA_LISTENERS"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])
    volume = kafka["volumes"][0].split(":")[0]
    assert volume in _compose()["volumes"]


@pytest.mark.parametrize("router", ROUTERS)
def test_router_environment_loads_into_settings(router: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each router's environment is valid for Settings and yields the compose broker, worker id and port."""
    env = _env(router)
    settings = _settings_for(router, monkeypatch)
    assert settings.kafka_bootstrap_servers == env[BOOTSTRAP_ENV]
    assert settings.worker_id == env[f"{ENV_PREFIX}WORKER_ID"] == router
    assert settings.web_port == int(env[f"{ENV_PREFIX}WEB_PORT"])
    assert settings.web_host == "0.0.0.0"
    advertised = [urlsplit(u).netloc for u in _env("kafka")["KAFKA_ADVERTISED_LISTENERS"].split(",")]
    assert settings.kafka_bootstrap_servers in advertised


@pytest.mark.parametrize("router", ROUTERS)
def test_router_service_serves_its_web_port(router: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A router runs the worker, publishes its web port and health-checks /healthz on it after the topics."""
    service, port = _service(router), _settings_for(router, monkeypatch).web_port
    assert service["command"] == ["worker"]
    assert service["restart"] == "unless-stopped"
    assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert [_container_port(p) for p in service["ports"]] == [port]
    url = next(arg for arg in service["healthcheck"]["test"] if "/healthz" in arg)
    assert f"http://127.0.0.1:{port}/healthz" in url


def test_routers_have_distinct_ids_and_host_ports() -> None:
    """Two workers never share a worker id or a host port."""
    ids = {_env(r)[f"{ENV_PREFIX}WORKER_ID"] for r in ROUTERS}
    host_ports = {str(_service(r)["ports"][0]).split(":")[0] for r in ROUTERS}
    assert len(ids) == len(host_ports) == len(ROUTERS)


def test_prometheus_scrapes_both_routers(monkeypatch: pytest.MonkeyPatch) -> None:
    """prometheus.yml parses and scrapes /metrics on every router at the port the routers serve."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    expected = {f"{r}:{_settings_for(r, monkeypatch).web_port}" for r in ROUTERS}
    assert targets == expected
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["scrape_interval"] == "5s"
    mounts = _service("prometheus")["volumes"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


def test_topics_service_creates_the_contract_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    """The init container creates exactly the default topics of Settings, partitioned as the router does."""
    created = _created_topics()
    defaults = {str(Settings.model_fields[f"topic_{key}"].default) for key in TOPIC_KEYS}
    assert set(created) == defaults
    settings = _settings_for(ROUTERS[0], monkeypatch)
    names, counts = topic_names(settings), topic_partitions(settings)
    assert created == {names[key]: counts[key] for key in TOPIC_KEYS}
    assert created["inference.requests"] == created["placements"] == 4


def test_dockerfile_runs_carbon_router_worker() -> None:
    """The image is python:3.11-slim, runs as non-root and its ENTRYPOINT is the carbon-router script."""
    instructions = _dockerfile()
    args = {name: value for name, value in instructions}  # the last of each instruction wins, as in Docker
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert json.loads(args["ENTRYPOINT"]) == ["carbon-router"]
    assert json.loads(args["CMD"]) == ["worker"]
    assert args["USER"] not in {"root", "0"}
    assert args["EXPOSE"] == "6066"
    assert "HEALTHCHECK" in args
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert "carbon-router" in scripts


# -- Grafana ------------------------------------------------------------------------------------------------
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "carbon-router.json"
_PROM_LABELS = {
    "le",
    "instance",
    "job",
}  # histogram buckets, and what Prometheus adds to every scraped series


def _dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _datasource() -> dict[str, Any]:
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text("utf-8"))
    (source,) = config["datasources"]
    assert isinstance(source, dict)
    return source


def _queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every templating query of the dashboard."""
    out = []
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    for var in _dashboard()["templating"]["list"]:
        query = var["query"]
        out.append((f"${var['name']}", query["query"] if isinstance(query, dict) else query))
    return out


def _exposition_series() -> dict[str, set[str]]:
    """Sample name -> label names in a real worker's /metrics text after every kind of event was recorded."""
    from prometheus_client.parser import text_string_to_metric_families

    from streams.metrics import Metrics

    m = Metrics("w-deploy")
    placed = placement(
        region="gcp:europe-west6-a",
        layer="energy",
        energy_usd=1e-5,
        carbon_g=0.02,
        baseline={"energy_usd": 3e-5, "carbon_g": 0.3},
    )
    rejected = placement(status="rejected", region=None, layer=None, reason="latency_budget")
    m.record_placements([placed, rejected], [0.0, 0.0])
    m.record_dead_letter("grid.signals", "region")
    m.batch_size.observe(2)
    m.batch_seconds.observe(0.001)
    m.lag.labels("0").set(3)
    m.signal_age.labels("gcp:europe-west6-a").set(12.0)
    m.resolve_seconds.observe(0.02)
    m.resolves.labels("ok").inc()
    m.signals.labels("valid").inc()
    m.broker_errors.labels("produce").inc()
    m.region_load.labels("gcp:europe-west6-a").set(1.5)
    m.is_leader.set(1)
    m.shares_version.set(3)
    m.duplicates.inc()
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(m.exposition().decode()):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def test_dashboard_covers_the_issue_panels() -> None:
    """The dashboard JSON parses and has panels for decisions/s, region, layer, savings, signal age, re-solve
    time and outcome, lag, dead letters and decision latency p50/p99."""
    dash = _dashboard()
    assert dash["uid"] == "carbon-router"
    assert dash["schemaVersion"] >= 36
    titles = " | ".join(p["title"].lower() for p in dash["panels"])
    for words in (
        "decisions/s by status",
        "by region",
        "by layer",
        "energy cost",
        "carbon",
        "signal age",
        "re-solve time",
        "re-solves by outcome",
        "consumer lag",
        "dead letters by topic and field",
        "decision latency",
    ):
        assert words in titles, words
    latency = " ".join(e for t, e in _queries() if t == "Decision latency")
    assert "histogram_quantile(0.5," in latency
    assert "histogram_quantile(0.99," in latency
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_every_promql_metric_and_label_exists_in_a_real_exposition() -> None:
    """Every carbon_router_* series a panel or variable queries is in a real Metrics exposition, with every
    label the query groups by or matches on."""
    series = _exposition_series()
    queried: set[str] = set()
    for where, expr in _queries():
        names = set(re.findall(r"\b(carbon_router_[a-z0-9_]+)", expr))
        assert names, f"{where}: {expr}"
        for name in names:
            assert name in series, f"{where}: {name} is not exported"
        queried |= names
        labels = {x.strip() for group in re.findall(r"\bby \(([^)]*)\)", expr) for x in group.split(",")}
        labels |= set(re.findall(r"\b([a-z_]+)\s*=~?\s*\"", expr))
        available = set().union(*(series[n] for n in names)) | _PROM_LABELS
        assert labels <= available, f"{where}: labels {labels - available} not on {names}"
    savings = {
        "carbon_router_baseline_energy_usd_total",
        "carbon_router_placed_energy_usd_total",
        "carbon_router_baseline_carbon_grams_total",
        "carbon_router_placed_carbon_grams_total",
    }
    assert savings <= queried


def test_panels_use_the_provisioned_prometheus_datasource() -> None:
    """The datasource: the compose Prometheus under a fixed uid; every panel, target and variable uses it."""
    source = _datasource()
    assert source["type"] == "prometheus"
    assert source["access"] == "proxy"
    url = urlsplit(source["url"])
    assert url.hostname == "prometheus"
    assert url.port == 9090
    assert any(str(p).endswith(":9090") for p in _service("prometheus")["ports"])
    uid = source["uid"]
    dash = _dashboard()
    refs = [p["datasource"] for p in dash["panels"] if p["type"] != "row"]
    refs += [t["datasource"] for p in dash["panels"] for t in p.get("targets", [])]
    refs += [v["datasource"] for v in dash["templating"]["list"]]
    assert refs
    assert all(r == {"type": "prometheus", "uid": uid} for r in refs)


def test_compose_runs_grafana_with_the_provisioning_mounted_read_only() -> None:
    """Compose runs a pinned grafana-oss on port 3000 with the provisioning and the dashboards mounted
    read-only where the provider looks, and anonymous visitors as viewers."""
    grafana, env = _service("grafana"), _env("grafana")
    image = grafana["image"]
    assert image.startswith("grafana/grafana-oss:")
    assert re.fullmatch(r"[^:]+:\d+\.\d+\.\d+", image)
    mounts = grafana["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    provider_conf = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "carbon-router.yml").read_text()
    )
    (provider,) = provider_conf["providers"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    for mount in mounts:
        source = mount.split(":")[0]
        if source.startswith("./"):
            assert (DEPLOY / source).is_dir(), mount
        else:
            assert source in _compose()["volumes"], mount
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
    assert [_container_port(p) for p in grafana["ports"]] == [3000]
    assert "prometheus" in grafana["depends_on"]
