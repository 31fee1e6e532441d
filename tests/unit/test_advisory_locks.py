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


def test_the_two_key_lock_classes_never_share_a_key() -> None:
    from command_api.throttle import ADDRESS_LOCK_CLASS
    from gateway.presence import USER_LOCK_CLASS

    classes = [ADDRESS_LOCK_CLASS, USER_LOCK_CLASS]
    assert len(set(classes)) == len(classes)
    assert all(-2**31 <= key < 2**31 for key in classes)  # int4
