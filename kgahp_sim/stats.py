"""Request counters of the sim API, so tests can assert how a client talks to the cluster."""

from __future__ import annotations

import threading
from collections import Counter


class RequestStats:
    """Counts per (verb, resource, subresource); watches count once, when opened. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def record(self, verb: str, resource: str, subresource: str = "") -> None:
        with self._lock:
            self._counts[(verb, resource, subresource)] += 1

    def count(self, verb: str | None = None, resource: str | None = None,
              subresource: str | None = None) -> int:
        with self._lock:
            return sum(n for (v, r, s), n in self._counts.items()
                       if (verb is None or v == verb) and (resource is None or r == resource)
                       and (subresource is None or s == subresource))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self._counts)
