"""What the integration tests do with projections: run the projector until idle, read rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from domain.app import Parley
from projectors.backfill import Backfill
from projectors.base import ReadModel
from projectors.runner import LiveProjector
from projectors.verify import Verdict, verify
from shared.settings import Settings


def drain(runner: LiveProjector, limit: int = 1000) -> int:
    """What the projector process does until idle: backfill late projections, then follow the
    log in batches of `limit`; the number of batches it followed."""
    for projection in list(runner.lagging):
        assert Backfill(runner, projection).run()
    batches = 0
    while runner.process_batch(limit=limit) is not None:
        batches += 1
    return batches


def query(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database_url) as conn:
        cursor = conn.execute(sql, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def verified(settings: Settings, projections: Sequence[ReadModel], app: Parley,
             **options: Any) -> list[Verdict]:
    """`verify`, its answer checked whole: one verdict per projection asked for, each comparing
    at least one table, and every one equal (`all()` of no verdicts would be true)."""
    verdicts = verify(settings, projections, app=app, **options)
    assert [v.projection for v in verdicts] == [p.name for p in projections]
    assert all(v.tables for v in verdicts), verdicts
    assert [(v.projection, t.table) for v in verdicts for t in v.tables if not t.equal] == []
    return verdicts
