"""Domain errors; the command API maps each to an HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """A command was refused by the rules of the domain."""


class EmailAlreadyRegisteredError(DomainError):
    """Another account already uses this email (case-insensitive)."""


class InvalidCredentialsError(DomainError):
    """Unknown email or wrong password (deliberately indistinguishable)."""


class SessionRevokedError(DomainError):
    """The refresh token's family was revoked (logout or detected reuse)."""


class RefreshTokenReusedError(DomainError):
    """A rotated refresh token was presented again: treated as theft."""


class ConcurrentRefreshError(DomainError):
    """Two refreshes with one token raced; the loser is refused without revoking."""


class IdempotencyConflictError(DomainError):
    """The Idempotency-Key was already used (or is in use) by this caller."""

    def __init__(self, detail: str, answer: tuple[int, str | None] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.answer = answer  # how the completed request was answered (its key's record)


class InvalidCommandError(DomainError):
    """The command is well-formed but not valid here (400), e.g. renaming a direct chat."""


class NotFoundError(DomainError):
    """The chat or message does not exist, was deleted, or is not visible to the caller (404)."""


class ForbiddenError(DomainError):
    """The caller may see the resource but not do this to it (403)."""
