"""Progress lines from pipeline workers: one line at most every `every` seconds per worker.

    python -m pipelines.ingest ...   # "ingest: 12,000 pairs done by worker 4242 (1,020/s) of 20,000"

A worker sees only its own share, so the line says what it knows: its count and rate, and the
input's total when the pipeline knows it. Worker output reaches the launcher's console.
"""

from __future__ import annotations

import os
import sys
import time


class Progress:
    def __init__(self, what: str, unit: str, every: float = 10.0, clock=time.monotonic):
        self._what, self._unit, self._every, self._clock = what, unit, every, clock
        self._start = self._last = clock()
        self.done = 0
        self.total: int | None = None

    def add(self, count: int = 1, out=None) -> None:
        self.done += count
        now = self._clock()
        if now - self._last < self._every:
            return
        self._last = now
        of = f" of {self.total:,} in the input" if self.total else ""
        print(
            f"{self._what}: {self.done:,} {self._unit.removesuffix('s') if self.done == 1 else self._unit} "
            f"done by worker {os.getpid()} "
            f"({pace(self.done, now - self._start)}){of}",
            file=out or sys.stderr,
            flush=True,
        )


def pace(done: int, seconds: float) -> str:
    """How fast, in words that stay true for a handful of items: "1,020/s", "2.5/s", or
    "12.0 s each" below one a second (a rate rounded to "0/s" would say nothing was done)."""
    rate = done / max(seconds, 1e-9)
    if rate >= 10:
        return f"{rate:,.0f}/s"
    if rate >= 1:
        return f"{rate:.1f}/s"
    return f"{seconds / max(done, 1):.1f} s each"
