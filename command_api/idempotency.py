"""The Idempotency-Key header: presence, length, and a fingerprint of the request it guards."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from starlette.requests import Request

from command_api.answers import answer
from domain.app import Claim
from shared.schemas import check_text
from shared.web.endpoints import ApiError

MAX_KEY_LENGTH = 255


def claim_for(request: Request, scope: str, body: Any, secret: bytes) -> Claim:
    """The caller's claim on the key; 400 when it is missing, empty, repeated or too long."""
    values = request.headers.getlist("idempotency-key")
    if len(values) > 1:
        raise ApiError(400, "Idempotency-Key header must be sent once")
    key = values[0].strip() if values else ""
    if not key:
        raise ApiError(400, "Idempotency-Key header is required")
    if len(key) > MAX_KEY_LENGTH:
        raise ApiError(400, f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters")
    try:
        check_text(values[0])  # read as latin-1: C1 controls may arrive (strip() eats U+0085)
    except ValueError as exc:
        raise ApiError(400, f"Idempotency-Key {exc}") from None
    claim = Claim(scope=scope, key=key, fingerprint=fingerprint(request, body, secret),
                  answer_for=answer)
    request.state.claim = claim  # a refusal of this request checks it (context.py)
    return claim


def fingerprint(request: Request, body: Any, secret: bytes) -> str:
    """Keyed hash of method, path and body: bodies hold passwords, so no plain digest is kept."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    message = f"{request.method}\n{request.url.path}\n{canonical}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
