"""Writes per user: a token bucket per user, in the memory of each API process.

A bucket holds up to `burst` tokens and refills at `rate` tokens per second; each write takes
one. A person typing fast never empties it; a flood from one user is held to `rate`. Kept in
memory because it sits on every write (~900/s): one dict lookup, no round trip. With N API
processes a user's writes may spread over N buckets, so the effective limit is at most N times
the setting (documented in the README).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

PRUNE_EVERY = 60.0  # seconds between sweeps of the buckets that are full again


class WriteBuckets:
    """Token buckets keyed by user id."""

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("WRITE_RATE_PER_USER must be > 0 and WRITE_BURST_PER_USER >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.buckets: dict[int, tuple[float, float]] = {}  # user -> (tokens, as of when)
        self.pruned_at = clock()

    def take(self, user: int) -> int:
        """Take a token for one write: 0, or the seconds (>= 1) until one is available."""
        now = self.clock()
        tokens, then = self.buckets.get(user, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens < 1.0:  # refused writes take nothing: the wait stays what it says
            self.buckets[user] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))
        self.buckets[user] = (tokens - 1.0, now)
        if now - self.pruned_at > PRUNE_EVERY:
            self._prune(now)
        return 0

    def _prune(self, now: float) -> None:
        """Forget the buckets that have refilled: a full bucket is the same as none, and the
        dict stays as large as the users who wrote within the last `burst / rate` seconds."""
        full = self.burst / self.rate
        self.buckets = {user: state for user, state in self.buckets.items()
                        if now - state[1] < full}
        self.pruned_at = now
