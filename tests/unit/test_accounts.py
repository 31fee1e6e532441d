"""The account aggregates and commands, on eventsourcing's in-memory persistence (no servers)."""

from __future__ import annotations

import pytest

from command_api.answers import answer
from domain.app import Claim, Parley
from domain.errors import (
    EmailAlreadyRegisteredError,
    IdempotencyConflictError,
    InvalidCredentialsError,
    RefreshTokenReusedError,
    SessionRevokedError,
)


@pytest.fixture
def app() -> Parley:
    return Parley(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def claim(key: str, body: str = "body") -> Claim:
    return Claim(scope="anonymous", key=key, fingerprint=body, answer_for=answer)


def register(app: Parley, key: str, email: str = "Ann@Example.com", body: str = "body"):
    return app.register_user(claim(key, body), email, "hash", "Ann", None, "t1")


def test_register_creates_user_and_first_session(app: Parley) -> None:
    outcome = register(app, "k1")
    user, session = outcome.value
    assert user.number == 1
    assert user.email == "Ann@Example.com"
    assert session.user_number == 1 and session.token_id == "t1"
    assert outcome.position >= 3  # user, email index, session and the key in one save
    assert app.find_user_by_email("ann@example.COM").number == 1


def test_email_is_unique_case_insensitively(app: Parley) -> None:
    register(app, "k1")
    with pytest.raises(EmailAlreadyRegisteredError):
        register(app, "k2", email="ANN@example.com ")


def test_replayed_key_reports_the_original_outcome(app: Parley) -> None:
    register(app, "k1")
    with pytest.raises(IdempotencyConflictError) as info:
        register(app, "k1", email="other@example.com", body="other body")
    assert info.value.answer is None  # different body: a different request
    with pytest.raises(IdempotencyConflictError) as info:
        register(app, "k1")
    assert info.value.answer == (201, "/api/v1/users/1")


def test_rejected_request_does_not_consume_the_key(app: Parley) -> None:
    register(app, "k1")
    with pytest.raises(EmailAlreadyRegisteredError):
        register(app, "k2", body="first")
    outcome = register(app, "k2", email="bob@example.com", body="corrected")
    assert outcome.value[0].email == "bob@example.com"


def test_expired_key_can_be_used_again(app: Parley) -> None:
    app.idempotency_ttl = 0.0
    register(app, "k1")
    outcome = app.run_command(register, app, "k1", email="bob@example.com")
    assert outcome.value[0].email == "bob@example.com"  # a second account (ids may have gaps)
    assert app.find_user_by_email("ann@example.com") is not None


def test_keys_are_scoped_per_caller(app: Parley) -> None:
    user, _ = register(app, "k1").value
    first = app.start_session(Claim("user:1", "same", "x"), user.number, "a")
    second = app.start_session(Claim("user:2", "same", "x"), user.number, "b")
    assert first.value.id != second.value.id


def test_refresh_rotation_and_reuse_revokes_the_family(app: Parley) -> None:
    _, session = register(app, "k1").value
    rotated = app.rotate_session(session.id, "t1", "t2").value
    assert rotated.token_id == "t2"
    with pytest.raises(RefreshTokenReusedError):
        app.rotate_session(session.id, "t1", "t3")
    with pytest.raises(SessionRevokedError):
        app.rotate_session(session.id, "t2", "t4")
    assert app.get_session(session.id).revoked


def test_logout_revokes(app: Parley) -> None:
    _, session = register(app, "k1").value
    app.revoke_session(session.id, "logout")
    with pytest.raises(SessionRevokedError):
        app.rotate_session(session.id, "t1", "t2")


def test_expired_key_taken_over_by_a_different_request(app: Parley) -> None:
    app.idempotency_ttl = 0.0
    app.run_command(register, app, "k1")
    outcome = app.run_command(register, app, "k1", email="bob@example.com", body="other")
    assert outcome.value[0].email == "bob@example.com"


class PlainPasswords:
    """A hasher whose hash is the password with a cost prefix (argon2 is not the rule here)."""

    def __init__(self, cost: str = "v2") -> None:
        self.cost = cost
        self.verified: list[str | None] = []

    def hash_password(self, password: str) -> str:
        return f"{self.cost}:{password}"

    def verify_password(self, password_hash: str | None, password: str) -> bool:
        self.verified.append(password_hash)
        return password_hash is not None and password_hash.split(":", 1)[1] == password

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith(f"{self.cost}:")


def test_log_in_with_the_right_password_opens_the_account(app: Parley) -> None:
    app.register_user(claim("k1"), "ann@example.com", "v2:secret", "Ann", None, "t1")
    user = app.authenticate("ANN@example.com", "secret", PlainPasswords())
    assert user.number == 1


def test_unknown_email_and_wrong_password_are_one_error_and_both_verify(app: Parley) -> None:
    app.register_user(claim("k1"), "ann@example.com", "v2:secret", "Ann", None, "t1")
    passwords = PlainPasswords()
    with pytest.raises(InvalidCredentialsError, match="Invalid email or password"):
        app.authenticate("ann@example.com", "wrong", passwords)
    with pytest.raises(InvalidCredentialsError, match="Invalid email or password"):
        app.authenticate("nobody@example.com", "secret", passwords)
    assert passwords.verified == ["v2:secret", None]  # the unknown email is verified too


def test_log_in_upgrades_an_outdated_hash(app: Parley) -> None:
    app.register_user(claim("k1"), "ann@example.com", "v1:secret", "Ann", None, "t1")
    app.authenticate("ann@example.com", "secret", PlainPasswords("v2"))
    stored = app.find_user_by_email("ann@example.com")
    assert stored is not None and stored.password_hash == "v2:secret"
    with pytest.raises(InvalidCredentialsError):  # a wrong password upgrades nothing
        app.authenticate("ann@example.com", "wrong", PlainPasswords("v3"))
    stored = app.find_user_by_email("ann@example.com")
    assert stored is not None and stored.password_hash == "v2:secret"
