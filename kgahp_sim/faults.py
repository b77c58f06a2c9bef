"""Fault injection for the sim API: latency, error statuses, dropped connections, cut watches.

Rules are added from any thread (tests) and consulted on the sim's loop for every request.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class FaultRule:
    method: str | None          # None = any method
    path: re.Pattern[str]       # searched in the request path
    watch: bool | None          # True = only watch requests, False = only non-watch, None = both
    latency: float = 0.0        # seconds added before answering
    status: int | None = None   # answer with this status (a proper Status body)
    retry_after: int | None = None
    drop: bool = False          # close the connection without any response
    cut_after_events: int | None = None  # watch: end the stream abruptly after N events
    cut_mid_event: bool = False          # watch: ...and send half of the next event first
    times: int | None = None    # how many requests it applies to (None = unlimited)
    probability: float = 1.0

    def matches(self, method: str, path: str, is_watch: bool) -> bool:
        return ((self.method is None or self.method.upper() == method)
                and self.path.search(path) is not None
                and (self.watch is None or self.watch == is_watch))


_MESSAGES = {
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "The server is currently unable to handle the request"),
    504: ("Timeout", "Timeout: request did not complete within the allowed duration"),
}


def status_for(code: int) -> tuple[str, str]:
    """The (reason, message) a fault status is rendered with."""
    return _MESSAGES.get(code, ("InternalError", f"injected fault {code}"))


class Faults:
    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._rng = random.Random(seed)
        self._down_until = 0.0

    def add(self, *, method: str | None = None, path: str = "", watch: bool | None = None,
            latency: float = 0.0, status: int | None = None, retry_after: int | None = None,
            drop: bool = False, cut_after_events: int | None = None, cut_mid_event: bool = False,
            times: int | None = None, probability: float = 1.0) -> FaultRule:
        """Add a rule; the first matching rule (in order added) applies to a request."""
        if status == 429 and retry_after is None:
            retry_after = 1
        rule = FaultRule(method, re.compile(path), watch, latency, status, retry_after, drop,
                         cut_after_events, cut_mid_event, times, probability)
        with self._lock:
            self._rules.append(rule)
        return rule

    def latency(self, seconds: float, **match: Any) -> FaultRule:
        return self.add(latency=seconds, **match)

    def error(self, status: int, **match: Any) -> FaultRule:
        return self.add(status=status, **match)

    def drop(self, **match: Any) -> FaultRule:
        return self.add(drop=True, **match)

    def cut_watch(self, after_events: int, *, mid_event: bool = False,
                  **match: Any) -> FaultRule:
        return self.add(watch=True, cut_after_events=after_events, cut_mid_event=mid_event,
                        **match)

    def down(self, seconds: float) -> None:
        """Drop every request for the next `seconds`."""
        with self._lock:
            self._down_until = time.monotonic() + seconds

    def is_down(self) -> bool:
        with self._lock:
            return time.monotonic() < self._down_until

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._down_until = 0.0

    def pick(self, method: str, path: str, is_watch: bool) -> FaultRule | None:
        """The rule that applies to this request, consuming one of its `times`."""
        with self._lock:
            for rule in self._rules:
                if rule.times is not None and rule.times <= 0:
                    continue
                if not rule.matches(method, path, is_watch):
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                return rule
        return None
