"""Which browser pages may use the API: CORS_ORIGINS, read once, for CORS and the `/ws` check.

An entry is an exact origin (`https://chat.example.com`), an origin with any port
(`http://localhost:*`, which also matches no port at all), or `*` (any origin). Nothing else:
a wildcard inside a host would let `http://localhost.evil.com` in. Matching is Starlette's
CORSMiddleware's own (exact strings, then a regex that must match the whole origin), so the
WebSocket check cannot drift from what the HTTP services answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

# What `parley up` allows when neither --cors-origins nor CORS_ORIGINS says otherwise: a
# frontend's own dev server on this machine (Vite :5173, Next/CRA :3000, any other port).
LOCAL_DEV_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*")
# Request headers the API reads, and response headers a client reads (everything else a
# preflight asks for is refused).
REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Min-Position")
EXPOSED_HEADERS = ("Location", "X-Event-Position", "X-Consistency", "Retry-After")

ANY_PORT = ":*"
_SCHEME = re.compile(r"https?")
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\]")
_PORT = re.compile(r"[0-9]{1,5}")


class OriginPatternError(ValueError):
    """A CORS_ORIGINS entry that is not `*`, an origin, or an origin with `:*` as its port."""


def normalize_origin_entry(entry: str) -> str:
    """The entry lowercased without a trailing slash, as browsers serialize an Origin."""
    value = entry.strip().lower().rstrip("/")
    if value == "*":
        return value
    scheme, sep, authority = value.partition("://")
    host, port = authority, ""
    if authority.endswith(ANY_PORT):
        host, port = authority.removesuffix(ANY_PORT), "*"
    elif ":" in authority.rpartition("]")[2]:  # a port after the host (an IPv6 host has colons)
        host, _, port = authority.rpartition(":")
        if not _PORT.fullmatch(port) or not 0 < int(port) < 65536:
            raise OriginPatternError(f"bad port in CORS origin {entry!r}")
    if not sep or not _SCHEME.fullmatch(scheme) or not _HOST.fullmatch(host):
        raise OriginPatternError(
            f"CORS origin {entry!r} must be '*', scheme://host[:port] or scheme://host:*")
    return value


def normalize_origin_entries(entries: Iterable[str]) -> tuple[str, ...]:
    """Every non-empty entry normalized, duplicates dropped, order kept."""
    return tuple(dict.fromkeys(normalize_origin_entry(e) for e in entries if e.strip()))


@dataclass(frozen=True)
class CorsPolicy:
    """The origins (normalized CORS_ORIGINS entries) whose pages may call the API."""

    entries: tuple[str, ...] = ()

    @property
    def any_origin(self) -> bool:
        return "*" in self.entries

    @property
    def exact(self) -> tuple[str, ...]:
        return tuple(e for e in self.entries if e != "*" and not e.endswith(ANY_PORT))

    @property
    def any_port(self) -> tuple[str, ...]:
        """The `scheme://host` of each `scheme://host:*` entry."""
        return tuple(e.removesuffix(ANY_PORT) for e in self.entries if e.endswith(ANY_PORT))

    @cached_property
    def origin_regex(self) -> str | None:
        """For CORSMiddleware's `allow_origin_regex` (full match): a listed host, any port."""
        if not self.any_port:
            return None
        hosts = "|".join(re.escape(base) for base in self.any_port)
        return f"(?:{hosts})(?::[0-9]{{1,5}})?"

    def middleware_options(self) -> dict[str, Any]:
        """CORSMiddleware's origin arguments."""
        return {"allow_origins": list(self.entries if self.any_origin else self.exact),
                "allow_origin_regex": self.origin_regex}

    def allows(self, origin: str) -> bool:
        """What CORSMiddleware decides for this Origin (its `is_allowed_origin`)."""
        if self.any_origin or origin in self.exact:
            return True
        return self.origin_regex is not None and re.fullmatch(self.origin_regex, origin) is not None

    def describe(self) -> str:
        """For people: what this policy lets in."""
        if not self.entries:
            return "same origin only"
        if self.any_origin:
            return "any origin"
        return ", ".join(e.replace(ANY_PORT, ":<any port>") for e in self.entries)
