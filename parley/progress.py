"""A progress bar on stderr: done/total, rate, ETA; redrawn in place on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class ProgressBar:
    """Call with (done, total) as often as you like; it redraws at most every `interval` s.

    On a terminal the line is redrawn in place; otherwise (logs, CI) a line is printed every
    `log_interval` seconds.
    """

    def __init__(self, label: str, stream: TextIO | None = None, interval: float = 0.2,
                 log_interval: float = 5.0) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval if self.tty else log_interval
        self.started = time.monotonic()
        self.shown = 0.0
        self.last = (0, 0)

    def __call__(self, done: int, total: int) -> None:
        self.last = (done, total)
        now = time.monotonic()
        if now - self.shown >= self.interval or done >= total:
            self.shown = now
            self._draw(done, total, now)

    def finish(self, note: str = "") -> None:
        done, total = self.last
        self._draw(done, total, time.monotonic(), end="\n")
        if note:
            print(note, file=self.stream, flush=True)

    def _draw(self, done: int, total: int, now: float, end: str = "") -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        fraction = min(1.0, done / total) if total else 1.0
        eta = (total - done) / rate if rate > 0 and total > done else 0.0
        bar = "#" * int(fraction * WIDTH)
        line = (f"{self.label} [{bar:<{WIDTH}}] {done:,}/{total:,} events"
                f"  {rate:,.0f} ev/s  ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        if self.tty:
            print(f"\r{line}\x1b[K", end=end, file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)
