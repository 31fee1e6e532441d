"""Login sessions: one aggregate per refresh-token family, rotated on every refresh (RFC 9700)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import RefreshTokenReusedError, SessionRevokedError


class Session(Aggregate):
    """A refresh-token family: only the newest token of the family is valid."""

    @event("Started")
    def __init__(self, user_number: int, token_id: str) -> None:
        self.user_number = user_number
        self.token_id = token_id
        self.revoked = False

    def check_current(self, token_id: str) -> None:
        """Refuse a revoked family or a token that is not the newest one."""
        if self.revoked:
            raise SessionRevokedError("session revoked")
        if token_id != self.token_id:
            raise RefreshTokenReusedError("refresh token already used")

    def rotate(self, presented_token_id: str, new_token_id: str) -> None:
        self.check_current(presented_token_id)
        self._rotated(new_token_id)

    @event("Rotated")
    def _rotated(self, token_id: str) -> None:
        self.token_id = token_id

    class Revoked(Aggregate.Event):
        """The family ended (logout, detected reuse): its access tokens die with it.

        Version 2 added `user_number`, so the event alone says whose sockets to close;
        stored version-1 events are upcast with None (nobody to notify any more).
        """

        class_version = 2

        reason: str
        user_number: int | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["user_number"] = None

    def revoke(self, reason: str) -> None:
        if not self.revoked:
            self._revoked(reason, self.user_number)

    @event(Revoked)
    def _revoked(self, reason: str, user_number: int | None) -> None:
        self.revoked = True


def session_id_from(value: str) -> UUID:
    """Parse a session id from a token claim (ValueError if malformed)."""
    return UUID(value)
