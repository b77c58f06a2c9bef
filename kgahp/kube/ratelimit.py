"""Client-side pacing so kgahp never floods an API server (QPS and burst, like client-go)."""

from __future__ import annotations

import threading
import time
from typing import Callable


class TokenBucket:
    """Thread-safe token bucket: `acquire()` blocks until a request may be sent."""

    def __init__(self, qps: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.qps = float(qps)
        self.burst = max(1, int(burst))
        self._clock = clock
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = threading.Lock()
        self.waited = 0.0          # total seconds callers were held back (for benchmarks/logs)

    def acquire(self) -> float:
        """Take one token; return the seconds this call waited."""
        if self.qps <= 0:  # 0 disables pacing
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1.0
            delay = 0.0 if self._tokens >= 0 else -self._tokens / self.qps
            self.waited += delay
        if delay > 0:
            time.sleep(delay)
        return delay


class ThrottleNotes:
    """Tells the admin, at most once per `every` seconds, that requests waited for the
    client-side limit, as client-go says "Waited for ... due to client-side throttling". A
    submit burst slowed by KGAHP_QPS looks like a slow API server otherwise."""

    def __init__(self, bucket: TokenBucket, *, least: float = 1.0, every: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bucket = bucket      # the limit the waits were for: its knobs are named
        self.least = least        # shorter waits are the pacing working as meant: not noted
        self.every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._count = 0           # waits of `least` or more since the last note
        self._longest = 0.0

    def note(self, waited: float, what: str) -> str | None:
        """Count one request's wait; the line to log now, if one is due."""
        if waited < self.least:
            return None
        with self._lock:
            self._count += 1
            self._longest = max(self._longest, waited)
            now = self._clock()
            if self._last is not None and now - self._last < self.every:
                return None
            count, longest = self._count, self._longest
            self._last, self._count, self._longest = now, 0, 0.0
        others = "" if count == 1 else (
            f"; {count} requests waited {self.least:g} s or more since the last such note, "
            f"the longest {longest:.1f} s")
        return (f"{what} waited {waited:.1f} s for the client-side rate limit (KGAHP_QPS = "
                f"{self.bucket.qps:g}, KGAHP_BURST = {self.bucket.burst}){others}. Raise both "
                "if the API server can take more.")
