"""A fresh database per test on the session's embedded PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest

from parley.stack import Stack
from shared.settings import Settings, parse_database_url


@pytest.fixture
def settings(stack: Stack) -> Iterator[Settings]:
    base = Settings.from_env(stack.env)
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    pg = parse_database_url(base.database_url)
    url = base.database_url.replace(f"/{pg.dbname}?", f"/{name}?", 1)
    yield replace(base, database_url=url, db_pool_size=2)
    with psycopg.connect(base.database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
