"""JWT access and refresh tokens (joserfc): ES256 only, typed, issuer and audience checked."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from joserfc.jwt import JWTClaimsRegistry

from shared.settings import ConfigurationError, Settings

ALGORITHM = "ES256"  # pinned: one algorithm per key, so "none" and HS/ES confusion fail
TokenKind = Literal["access", "refresh"]
# Distinct `typ` headers keep the two kinds mutually exclusive (RFC 8725 §3.11, RFC 9068).
TOKEN_TYPES: dict[TokenKind, str] = {"access": "at+jwt", "refresh": "rt+jwt"}
LEEWAY_SECONDS = 5
VERIFIED_CACHE_SIZE = 10_000


class InvalidTokenError(Exception):
    """The token is malformed, forged, expired, of the wrong kind or for someone else."""


@dataclass(frozen=True)
class TokenClaims:
    """The verified claims Parley relies on."""

    user_id: int
    token_id: str
    expires_at: int
    session_id: str | None = None


def ensure_signing_key(path: Path) -> Path:
    """Create a P-256 private key once (for `parley up`); later runs reuse it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ECKey.generate_key("P-256", private=True)
        path.write_bytes(key.as_pem(private=True))
        path.chmod(0o600)
    return path


def load_key(settings: Settings) -> ECKey:
    """The signing (private) key: only the command API needs it."""
    settings.require("jwt_key_file")
    key = ECKey.import_key(Path(settings.jwt_key_file).read_bytes())
    if not key.is_private:
        raise ConfigurationError("JWT_KEY_FILE must hold the private signing key")
    return key


def load_verification_key(settings: Settings) -> ECKey:
    """The public key: JWT_PUBLIC_KEY_FILE (query API, gateway: they never see the private
    key), else the public half of JWT_KEY_FILE (`parley up` runs every service in one process).
    """
    if settings.jwt_public_key_file:
        key = ECKey.import_key(Path(settings.jwt_public_key_file).read_bytes())
        if key.is_private:
            raise ConfigurationError("JWT_PUBLIC_KEY_FILE holds a private key: give services "
                                     "that only verify tokens the public key alone")
        return key
    if not settings.jwt_key_file:
        raise ConfigurationError("JWT_PUBLIC_KEY_FILE (or JWT_KEY_FILE) is required")
    return ECKey.import_key(load_key(settings).as_pem(private=False))


class TokenService:
    """Issues and verifies Parley's tokens with one EC key."""

    def __init__(self, settings: Settings, key: ECKey | None = None) -> None:
        self._key = key or load_key(settings)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        # ECDSA verification costs ~0.2 ms; a client sends the same access token for 15 min.
        # Only successes are cached, keyed by the whole token, and expiry is rechecked.
        self._verified: dict[tuple[str, TokenKind], TokenClaims] = {}
        self._ttl: dict[TokenKind, float] = {
            "access": settings.access_token_ttl,
            "refresh": settings.refresh_token_ttl,
        }

    @classmethod
    def verifier(cls, settings: Settings) -> TokenService:
        """A service that verifies tokens and cannot issue any (it holds the public key)."""
        return cls(settings, load_verification_key(settings))

    @property
    def access_ttl(self) -> float:
        return self._ttl["access"]

    def issue(self, kind: TokenKind, user_id: int, session_id: str | None = None,
              token_id: str | None = None) -> tuple[str, str]:
        """Return (token, token_id)."""
        if not self._key.is_private:
            raise ConfigurationError("this service holds the public key only: it cannot issue")
        now = int(time.time())
        token_id = token_id or secrets.token_urlsafe(16)
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(user_id),
            "iat": now,
            "nbf": now,
            "exp": now + int(self._ttl[kind]),
            "jti": token_id,
        }
        if session_id is not None:
            claims["sid"] = session_id
        header = {"alg": ALGORITHM, "typ": TOKEN_TYPES[kind]}
        return jwt.encode(header, claims, self._key, algorithms=[ALGORITHM]), token_id

    def verify(self, token: str, kind: TokenKind) -> TokenClaims:
        """Verify signature, algorithm, type, issuer, audience and lifetime."""
        cached = self._verified.get((token, kind))
        if cached is not None:
            if cached.expires_at + LEEWAY_SECONDS >= time.time():
                return cached
            del self._verified[(token, kind)]
        claims = self._verify(token, kind)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # oldest first (insertion order)
        self._verified[(token, kind)] = claims
        return claims

    def _verify(self, token: str, kind: TokenKind) -> TokenClaims:
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
            if decoded.header.get("typ") != TOKEN_TYPES[kind]:
                raise InvalidTokenError(f"not an {kind} token")
            registry = JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": self._issuer},
                aud={"essential": True, "value": self._audience},
                sub={"essential": True},
                exp={"essential": True},
                jti={"essential": True},
            )
            registry.validate(decoded.claims)
            claims = decoded.claims
            session_id = claims.get("sid")
            if kind == "refresh" and not isinstance(session_id, str):
                raise InvalidTokenError("refresh token without session")
            return TokenClaims(user_id=int(claims["sub"]), token_id=str(claims["jti"]),
                               expires_at=int(claims["exp"]), session_id=session_id)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidTokenError("invalid token") from exc
