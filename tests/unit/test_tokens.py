"""Token issuing and verification rules (RFC 8725): type, algorithm, issuer, audience, expiry."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from shared.jwt.tokens import InvalidTokenError, TokenService, ensure_signing_key
from shared.settings import ConfigurationError, Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(jwt_key_file=str(ensure_signing_key(tmp_path / "key.pem")))


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_access_token_round_trip(settings: Settings) -> None:
    tokens = TokenService(settings)
    token, token_id = tokens.issue("access", 7)
    claims = tokens.verify(token, "access")
    assert (claims.user_id, claims.token_id) == (7, token_id)


def test_kinds_are_not_interchangeable(settings: Settings) -> None:
    tokens = TokenService(settings)
    access, _ = tokens.issue("access", 7)
    refresh, _ = tokens.issue("refresh", 7, session_id="s")
    with pytest.raises(InvalidTokenError):
        tokens.verify(refresh, "access")
    with pytest.raises(InvalidTokenError):
        tokens.verify(access, "refresh")


def test_other_issuer_audience_or_key_is_refused(settings: Settings, tmp_path: Path) -> None:
    tokens = TokenService(settings)
    for other in (replace(settings, jwt_issuer="evil"), replace(settings, jwt_audience="other"),
                  replace(settings, jwt_key_file=str(ensure_signing_key(tmp_path / "k2.pem")))):
        token, _ = TokenService(other).issue("access", 7)
        with pytest.raises(InvalidTokenError):
            tokens.verify(token, "access")


def test_expired_token_is_refused(settings: Settings) -> None:
    expired = TokenService(replace(settings, access_token_ttl=-60))
    token, _ = expired.issue("access", 7)
    with pytest.raises(InvalidTokenError):
        TokenService(settings).verify(token, "access")


def test_unsigned_and_tampered_tokens_are_refused(settings: Settings) -> None:
    tokens = TokenService(settings)
    token, _ = tokens.issue("access", 7)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    none_token = f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{payload}."
    tampered = f"{header}.{_b64({**claims, 'sub': '8'})}.{signature}"
    hs_token = f"{_b64({'alg': 'HS256', 'typ': 'at+jwt'})}.{payload}.{signature}"
    for bad in (none_token, tampered, hs_token, "garbage", ""):
        with pytest.raises(InvalidTokenError):
            tokens.verify(bad, "access")


def test_a_verifier_holds_the_public_key_only(settings: Settings, tmp_path: Path) -> None:
    signer = TokenService(settings)
    token, _ = signer.issue("access", 7, session_id="s")
    public = tmp_path / "public.pem"
    public.write_bytes(ECKey.import_key(Path(settings.jwt_key_file).read_bytes())
                       .as_pem(private=False))
    for verifier in (TokenService.verifier(replace(settings, jwt_key_file="",
                                                   jwt_public_key_file=str(public))),
                     TokenService.verifier(settings)):  # parley up: the signing key's half
        assert verifier.verify(token, "access").user_id == 7
        with pytest.raises(ConfigurationError):
            verifier.issue("access", 7)
    other = ECKey.generate_key("P-256", private=True)
    public.write_bytes(other.as_pem(private=False))
    stranger = TokenService.verifier(replace(settings, jwt_key_file="",
                                             jwt_public_key_file=str(public)))
    with pytest.raises(InvalidTokenError):
        stranger.verify(token, "access")  # signed by another key


def test_a_private_key_is_refused_where_only_the_public_one_belongs(
        settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="private key"):
        TokenService.verifier(replace(settings, jwt_public_key_file=settings.jwt_key_file))
    with pytest.raises(ConfigurationError):
        TokenService.verifier(replace(settings, jwt_key_file=""))
