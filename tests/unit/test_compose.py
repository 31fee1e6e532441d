"""compose.yaml, the Dockerfile and deploy/ agree with the code: commands, settings, routing."""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import ConfigurationError, Settings

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("command-api", "query-api", "gateway", "projector")
HTTP_SERVICES = ("command-api", "query-api", "gateway")
# What a service cannot run without in production (the defaults suit only `parley up`).
REQUIRED = ("DATABASE_URL", "NATS_URL", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")
# Which token key each service gets: the signing key only where tokens are issued.
TOKEN_KEYS = {"command-api": "JWT_KEY_FILE", "query-api": "JWT_PUBLIC_KEY_FILE",
              "gateway": "JWT_PUBLIC_KEY_FILE", "projector": None}
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


@cache
def compose() -> dict[str, Any]:
    # safe_load resolves anchors and `<<:` merge keys the way Compose does
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def environment(name: str) -> dict[str, str]:
    """The service's environment with `${VAR:-default}` resolved to its default."""
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))
            for key, value in env.items()}


def variables_read_by_settings() -> set[str]:
    class Recorder(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            seen.add(key)
            return super().get(key, default)

    seen: set[str] = set()
    Settings.from_env(Recorder())
    return seen


def test_every_service_has_an_image_or_a_build() -> None:
    for name, spec in compose()["services"].items():
        assert spec.get("image") or spec.get("build"), name


def test_the_app_services_are_built_from_this_repo() -> None:
    built = {name for name, spec in compose()["services"].items() if spec.get("build")}
    assert built == set(APP_SERVICES)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_command_runs_code_of_this_repo(name: str) -> None:
    command = service(name)["command"]
    if command[0] == "uvicorn":
        target = command[1]
        assert "--factory" in command, f"{name}: {target} is a factory"
        module, attr = target.split(":")
    else:
        assert command[:2] == ["python", "-m"], command
        module, attr = f"{command[2]}.__main__", None
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # its parent package is missing
        spec = None
    assert spec is not None, f"compose service {name} runs {module}, which does not exist"
    if attr:
        assert callable(getattr(importlib.import_module(module), attr, None)), target


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_http_services_listen_where_the_proxy_and_healthcheck_look(name: str) -> None:
    command = service(name)["command"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8000"
    assert "--proxy-headers" in command
    assert "/healthz" in " ".join(service(name)["healthcheck"]["test"])


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_http_services_believe_x_forwarded_for_from_the_proxy_only(name: str) -> None:
    proxy = service("proxy")["networks"]["default"]["ipv4_address"]
    command = service(name)["command"]
    assert command[command.index("--forwarded-allow-ips") + 1] == proxy
    assert environment(name)["TRUSTED_PROXIES"] == proxy
    # no other container can be handed the proxy's address
    subnet = compose()["networks"]["default"]["ipam"]["config"][0]
    assert ipaddress.ip_address(proxy) in ipaddress.ip_network(subnet["subnet"])
    assert ipaddress.ip_address(proxy) not in ipaddress.ip_network(subnet["ip_range"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_environment_names_are_read_by_settings(name: str) -> None:
    unknown = set(environment(name)) - variables_read_by_settings()
    assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_production_settings_are_given(name: str) -> None:
    env = environment(name)
    assert set(REQUIRED) <= variables_read_by_settings()
    missing = [key for key in REQUIRED if not env.get(key)]
    assert not missing, f"{name} lacks {missing}"
    assert Settings.from_env(env).postgres.host == "postgres"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_production_allows_an_explicit_list_of_pages_storage_included(name: str) -> None:
    origins = environment(name)["CORS_ORIGINS"]
    cors = Settings.from_env({"CORS_ORIGINS": origins}).cors
    assert cors.exact == cors.entries and cors.entries  # no `*`, no any-port wildcard
    assert environment("minio")["MINIO_API_CORS_ALLOW_ORIGIN"] == origins


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_service_gets_only_the_token_key_it_needs(name: str) -> None:
    env, wanted = environment(name), TOKEN_KEYS[name]
    given = {key for key in ("JWT_KEY_FILE", "JWT_PUBLIC_KEY_FILE") if key in env}
    assert given == ({wanted} if wanted else set())
    mounted = service(name).get("secrets", [])
    assert mounted == ([env[wanted].removeprefix("/run/secrets/")] if wanted else [])
    if wanted:
        source = compose()["secrets"][mounted[0]]["file"]
        ignored = (ROOT / ".gitignore").read_text().splitlines()
        assert source.removeprefix("./") in ignored


@pytest.mark.parametrize("name", ["query-api", "gateway"])
def test_verifying_services_start_from_the_compose_environment(name: str,
                                                               tmp_path: Path) -> None:
    """Their app factories accept the public key alone (and refuse to run without one)."""
    from joserfc.jwk import ECKey

    public = tmp_path / "public.pem"
    public.write_bytes(ECKey.generate_key("P-256", private=True).as_pem(private=False))
    env = {**environment(name), "JWT_PUBLIC_KEY_FILE": str(public)}
    factory = importlib.import_module(f"{name.replace('-', '_')}.app").create_app
    factory(Settings.from_env(env))  # builds the app; the lifespan (servers) is not started
    del env["JWT_PUBLIC_KEY_FILE"]
    with pytest.raises(ConfigurationError):
        factory(Settings.from_env(env))


def test_proxy_publishes_port_8000() -> None:
    published = set()
    for port in service("proxy")["ports"]:
        if isinstance(port, dict):
            published.add(str(port["published"]))
        elif str(port).count(":"):  # [IP:]HOST:CONTAINER[/PROTOCOL]
            published.add(str(port).split(":")[-2])
    assert "8000" in published


def mounted_file(name: str, target: str) -> Path:
    for volume in service(name)["volumes"]:
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == target:
            return ROOT / source
    raise AssertionError(f"{name} mounts nothing at {target}")


def test_proxy_config_routes_to_the_services() -> None:
    config = mounted_file("proxy", "/etc/caddy/Caddyfile").read_text()
    for path in ("/ws", "/api/v1/", "/docs", "/openapi.json", "/healthz", "/app /app/*"):
        assert path in config
    for upstream in HTTP_SERVICES:
        assert upstream in compose()["services"]
        assert f"{upstream}:8000" in config


def test_nats_fsyncs_every_write() -> None:
    command = service("nats")["command"]
    assert "-js" in command
    config_path = command[command.index("-c") + 1]
    config = mounted_file("nats", config_path).read_text()
    assert re.search(r"^\s*sync_interval:\s*always\s*$", config, re.M)


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_base_image_is_python_3_11_or_newer() -> None:
    bases = re.findall(r"^FROM\s+python:(\d+)\.(\d+)", dockerfile(), re.M | re.I)
    assert bases, "every stage builds on the official python image"
    assert all((int(major), int(minor)) >= (3, 11) for major, minor in bases)


def test_dockerfile_does_not_run_as_root() -> None:
    final_stage = re.split(r"^FROM\s", dockerfile(), flags=re.M | re.I)[-1]
    users = re.findall(r"^USER\s+(\S+)", final_stage, re.M | re.I)
    assert users, "the final stage sets USER"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_copies_every_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    copied = set(re.findall(r"^COPY\s+(\w+)\s+/src/\1/?\s*$", dockerfile(), re.M))
    assert packages == copied
