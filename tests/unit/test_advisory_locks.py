"""PostgreSQL advisory locks share one key space: each of ours needs its own key."""

from __future__ import annotations

from domain.eventstore.recorder import APPEND_LOCK
from domain.eventstore.schema import SCHEMA_LOCK
from projectors.leadership import PROJECTOR_LOCK
from projectors.tracking import BATCH_LOCK


def test_the_schema_batch_append_and_projector_locks_never_share_a_key() -> None:
    keys = [SCHEMA_LOCK, BATCH_LOCK, APPEND_LOCK, PROJECTOR_LOCK]
    assert len(set(keys)) == len(keys)
    assert all(-2**63 <= key < 2**63 for key in keys)  # bigint
