"""A fresh database per test on the session's PostgreSQL, and the domain application on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest

from domain.app import Parley
from parley.stack import Stack
from shared.settings import Settings
from tests.databases import database_url_for


@pytest.fixture
def settings(stack: Stack) -> Iterator[Settings]:
    base = Settings.from_env(stack.env)
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = database_url_for(base.database_url, name)
    with psycopg.connect(url) as conn:  # never the shared database by mistake
        assert conn.execute("SELECT current_database()").fetchone() == (name,)
    yield replace(base, database_url=url, db_pool_size=2)
    with psycopg.connect(base.database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def app(settings: Settings) -> Iterator[Parley]:
    parley = Parley(env=settings.eventsourcing_env())
    yield parley
    parley.close()
