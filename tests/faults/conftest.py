"""The fault suite's own system: faults are injected into it, never into the shared stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from parley.stack import Stack, StackOptions, running_stack
from tests.conftest import TEST_LIMITS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.path):
            item.add_marker(pytest.mark.faults)


def faulty_stack(tmp_path_factory: pytest.TempPathFactory, name: str, nats_servers: int = 1,
                 **env: str) -> Iterator[Stack]:
    data_dir = Path(tmp_path_factory.mktemp(name))
    options = StackOptions(data_dir=data_dir, port=0, log_dir=data_dir / "logs", workers=2,
                           extra_env={"CONSISTENCY_TIMEOUT": "10", "READY_MAX_STALL": "5",
                                      **TEST_LIMITS, **env},
                           nats_servers=nats_servers)
    with running_stack(options) as running:
        yield running


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from faulty_stack(tmp_path_factory, "faults")


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A system on a three-server NATS cluster, its stream replicated on all three."""
    yield from faulty_stack(tmp_path_factory, "clustered", nats_servers=3, NATS_REPLICAS="3")
