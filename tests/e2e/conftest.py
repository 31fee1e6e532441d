"""Fixtures every e2e module uses: the public API client and the shared stack's settings."""

from __future__ import annotations

import pytest

from parley.stack import Stack
from shared.settings import Settings
from tests.e2e.client import Api


@pytest.fixture(scope="module")
def api(stack: Stack) -> Api:
    return Api(stack.base_url)


@pytest.fixture(scope="module")
def settings(stack: Stack) -> Settings:
    return Settings.from_env(stack.env)
