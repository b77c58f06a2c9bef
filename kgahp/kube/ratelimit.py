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
