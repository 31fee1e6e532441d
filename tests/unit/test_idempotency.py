"""Idempotency records: keys stored before the event-store machinery moved still load."""

from __future__ import annotations

from dataclasses import replace

import pytest

from domain.app import Claim, Parley
from domain.errors import IdempotencyConflictError
from domain.eventstore.idempotency import IdempotencyKey
from domain.outcomes import Change, Effect, Resource


def test_a_key_recorded_under_its_old_topic_still_answers_a_retry() -> None:
    """Events in the log name `domain.idempotency:IdempotencyKey...` (its first module)."""
    app = Parley(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    record = IdempotencyKey(scope="user:1", key="old", fingerprint="fp", status=201,
                            location="/api/v1/chats/5")
    stored = [replace(app.mapper.to_stored_event(event),
                      topic="domain.idempotency:IdempotencyKey.Used")
              for event in record.collect_events()]
    app.recorder.insert_events(stored)
    assert app.repository.get(record.id).answer == (201, "/api/v1/chats/5")
    with pytest.raises(IdempotencyConflictError) as raised:
        app.check_claim(Claim("user:1", "old", "fp"))
    assert raised.value.answer == (201, "/api/v1/chats/5")


def test_a_claim_made_outside_a_protocol_keeps_no_answer() -> None:
    app = Parley(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    claim = Claim("user:1", "k", "fp")
    assert claim.answer_for(Effect(Change.CREATED, Resource.CHAT, 1)) == (0, None)
    app.register_user(Claim("anonymous", "r", "fp"), "a@example.com", "h", "A", None, "t")
    app.create_chat(claim, 1, "T", True, [])
    with pytest.raises(IdempotencyConflictError) as raised:
        app.check_claim(claim)
    assert raised.value.answer == (0, None)
