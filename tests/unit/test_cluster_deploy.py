"""deploy/cluster/ (several machines) agrees with compose.yaml, with the code's settings and
with the router of `parley up --cluster`: same commands, settings, trust and routing."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from parley.embedded.processes import binary
from parley.embedded.router import Upstreams, caddyfile
from tests.unit import test_compose
from tests.unit.test_compose import INTERPOLATION, ROOT, variables_read_by_settings

DEPLOY = ROOT / "deploy" / "cluster"
KINDS = {"command-api": ("command-api-1", "command-api-2"),
         "query-api": ("query-api-1", "query-api-2"),
         "gateway": ("gateway-1", "gateway-2"),
         "projector": ("projector-1", "projector-2")}
INSTANCES = [(kind, name) for kind, names in KINDS.items() for name in names]


@cache
def cluster() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def service(name: str) -> dict[str, Any]:
    return cluster()["services"][name]


def environment(name: str) -> dict[str, str]:
    env = service(name).get("environment") or {}
    return {key: INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))
            for key, value in env.items()}


def proxy_address() -> str:
    return str(service("proxy")["networks"]["default"]["ipv4_address"])


@pytest.mark.parametrize(("kind", "name"), INSTANCES)
def test_each_service_runs_as_compose_yaml_runs_it(kind: str, name: str) -> None:
    mine = [proxy_address() if arg == proxy_address() else arg
            for arg in service(name)["command"]]
    single = test_compose.service(kind)["command"]
    assert [arg for arg in mine if arg != proxy_address()] == \
        [arg for arg in single if arg != test_compose.service("proxy")["networks"]["default"][
            "ipv4_address"]]


@pytest.mark.parametrize(("kind", "name"), INSTANCES)
def test_each_service_gets_the_settings_of_compose_yaml_and_the_cluster_ones(
        kind: str, name: str) -> None:
    env = environment(name)
    assert set(test_compose.environment(kind)) <= set(env)
    assert urlsplit(env["DATABASE_URL"]).hostname == "postgres-primary"
    nats = [urlsplit(url).hostname for url in env["NATS_URL"].split(",")]
    assert nats == ["nats-1", "nats-2", "nats-3"]
    assert env["NATS_REPLICAS"] == "3"
    replica = env.get("READ_DATABASE_URL")
    assert (urlsplit(replica).hostname if replica else None) == (
        "postgres-replica" if kind == "query-api" else None)
    unknown = set(env) - variables_read_by_settings()
    assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"


@pytest.mark.parametrize(("kind", "name"), [i for i in INSTANCES if i[0] != "projector"])
def test_http_services_believe_x_forwarded_for_from_the_proxy_only(kind: str, name: str) -> None:
    command = service(name)["command"]
    assert command[command.index("--forwarded-allow-ips") + 1] == proxy_address()
    assert environment(name)["TRUSTED_PROXIES"] == proxy_address()
    # no other container can be handed the proxy's address
    subnet = cluster()["networks"]["default"]["ipam"]["config"][0]
    assert ipaddress.ip_address(proxy_address()) in ipaddress.ip_network(subnet["subnet"])
    assert ipaddress.ip_address(proxy_address()) not in ipaddress.ip_network(subnet["ip_range"])


def test_the_nats_servers_route_to_each_other_and_fsync() -> None:
    config = (DEPLOY / "nats.conf").read_text()
    routes = re.findall(r"nats://([\w-]+):6222", config)
    servers = sorted(name for name in cluster()["services"] if name.startswith("nats-"))
    assert routes == servers == ["nats-1", "nats-2", "nats-3"]
    assert re.search(r"^\s*sync_interval:\s*always\s*$", config, re.M)
    names = {environment(name)["NATS_SERVER_NAME"] for name in servers}
    assert names == set(servers)


def adapted(config: Path) -> dict[str, Any]:
    """Caddy's own reading of a Caddyfile (it refuses an invalid one)."""
    result = subprocess.run([binary("caddy"), "adapt", "--adapter", "caddyfile", "--config",
                             str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def proxies(node: Any) -> list[dict[str, Any]]:
    """Every reverse_proxy handler of an adapted config, in route order."""
    if isinstance(node, dict):
        found = [node] if node.get("handler") == "reverse_proxy" else []
        return found + [p for value in node.values() for p in proxies(value)]
    if isinstance(node, list):
        return [p for value in node for p in proxies(value)]
    return []


def test_the_proxy_balances_as_the_router_of_parley_up_cluster(tmp_path: Path) -> None:
    """Same routes in the same order, each over every upstream of its kind, with the router's
    health checks, retries and buffering (the router alone dials from its own address)."""
    deploy = proxies(adapted(DEPLOY / "Caddyfile"))
    router = tmp_path / "Caddyfile"
    router.write_text(caddyfile("127.0.0.1", 8000, Upstreams(
        ["127.0.0.1:1", "127.0.0.1:2"], ["127.0.0.1:3", "127.0.0.1:4"],
        ["127.0.0.1:5", "127.0.0.1:6"])))
    local = proxies(adapted(router))
    kinds = {"127.0.0.1:1": "command-api", "127.0.0.1:3": "query-api", "127.0.0.1:5": "gateway"}
    assert [kinds[p["upstreams"][0]["dial"]] for p in local] == \
        [p["upstreams"][0]["dial"].removesuffix("-1:8000") for p in deploy]
    for mine, theirs in zip(deploy, local, strict=True):
        kind = mine["upstreams"][0]["dial"].removesuffix("-1:8000")
        assert [u["dial"] for u in mine["upstreams"]] == [f"{n}:8000" for n in KINDS[kind]]
        for key in ("load_balancing", "health_checks", "request_buffers"):
            assert mine[key] == theirs[key], key
    assert "127.0.0.1" not in json.dumps(deploy)


def test_the_replica_is_built_from_the_primary() -> None:
    script = Path(DEPLOY / "postgres-replica.sh").read_text()
    assert "pg_basebackup -h postgres-primary -U replicator" in script and " -R " in script
    assert "replicator WITH REPLICATION" in (DEPLOY / "postgres-primary.sh").read_text()
