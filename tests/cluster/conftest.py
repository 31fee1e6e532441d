"""The cluster suite's own system: `parley up --cluster` (two processes of every service
behind the Caddy router, a PostgreSQL streaming replica serving the reads, three NATS servers
with the stream on all three), started once for the directory; faults are injected into it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from parley.stack import ClusterShape, Stack, StackOptions, running_stack
from tests.conftest import TEST_LIMITS
from tests.e2e.client import Api, User


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = Path(tmp_path_factory.mktemp("cluster"))
    # the tests reach the services from 127.0.0.1, which is not the router's address: the
    # services must not believe their X-Forwarded-For (TEST_LIMITS trusts 127.0.0.1)
    limits = {k: v for k, v in TEST_LIMITS.items() if k != "TRUSTED_PROXIES"}
    options = StackOptions(data_dir=data_dir, port=0, log_dir=data_dir / "logs",
                           cluster=ClusterShape.each(2), replica=True, nats_servers=3,
                           extra_env={"CONSISTENCY_TIMEOUT": "10", "READY_MAX_STALL": "5",
                                      **limits})
    with running_stack(options) as running:
        yield running


@pytest.fixture(scope="session")
def api(cluster: Stack) -> Api:
    """The public API, through the router."""
    return Api(cluster.base_url)


def direct(cluster: Stack, name: str) -> Stack:
    """The cluster as seen by a client of one of its processes (`command-api-2`)."""
    return replace(cluster, base_url=cluster.listeners[name])


def via(user: User, api: Api) -> User:
    """The same user, calling another entry point."""
    other = copy.copy(user)
    other.api = api
    return other
