"""Session-wide servers: embedded PostgreSQL, NATS and S3 (or external ones from the environment)
and the whole Parley system on a free port, started once and shared by the e2e tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from parley.stack import Stack, StackOptions, running_stack

TEST_LIMITS = {"TRUSTED_PROXIES": "127.0.0.1", "REGISTER_MAX_PER_ADDRESS": "100000",
               "WRITE_RATE_PER_USER": "1000", "WRITE_BURST_PER_USER": "10000"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = Path(os.environ.get("PARLEY_TEST_DATA_DIR") or tmp_path_factory.mktemp("parley"))
    # two API workers, as `parley up` runs by default: every e2e test crosses processes
    # port 0: picked as the API starts, after the embedded servers took theirs (and retried)
    # The tests are the proxy here: each names its own client address in X-Forwarded-For, so
    # throttles and limits of one test never meet another's. Limits generous but finite: the
    # whole suite registers and writes from one machine (tests/e2e/test_rate_limits.py runs
    # API processes of their own with small limits and with the defaults).
    options = StackOptions(data_dir=data_dir, port=0, log_dir=data_dir / "logs",
                           workers=2,
                           extra_env={"CONSISTENCY_TIMEOUT": "10", "UPLOAD_MAX_BYTES": "1048576",
                                      "READY_MAX_STALL": "3",
                                      **TEST_LIMITS})
    with running_stack(options) as running:
        yield running
