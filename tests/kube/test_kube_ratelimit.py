"""Client-side pacing: the token bucket lets a burst through and then paces at QPS, and a request
held back for long is said in the log (at most once a minute), naming the knobs to raise."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from kubernetes import client

from kgahp.config import KubeSettings
from kgahp.kube.api import Kube
from kgahp.kube.ratelimit import ThrottleNotes, TokenBucket


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_lets_the_burst_through_then_paces_at_qps() -> None:
    clock = _Clock()
    bucket = TokenBucket(qps=20, burst=2, clock=clock)
    assert [bucket.acquire(), bucket.acquire()] == [0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.05)       # one token every 1/20 s
    assert bucket.acquire() == pytest.approx(0.10)       # queued behind the one before
    clock.now += 10.0                                    # idle: refilled, up to the burst only
    assert [bucket.acquire(), bucket.acquire()] == [0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.05)
    assert bucket.waited == pytest.approx(0.20)


def test_qps_0_never_waits() -> None:
    bucket = TokenBucket(qps=0, burst=1)
    assert [bucket.acquire() for _ in range(100)] == [0.0] * 100


def test_a_long_wait_is_noted_at_most_once_a_minute_with_what_came_between() -> None:
    clock = _Clock()
    notes = ThrottleNotes(TokenBucket(qps=20, burst=40), clock=clock)
    assert notes.note(0.9, "creating pod a/p1") is None   # pacing as meant: nothing to say
    first = notes.note(1.25, "creating pod a/p2")
    assert first == ("creating pod a/p2 waited 1.2 s for the client-side rate limit "
                     "(KGAHP_QPS = 20, KGAHP_BURST = 40). Raise both if the API server can "
                     "take more.")
    clock.now += 30
    assert notes.note(2.0, "creating pod a/p3") is None   # within the minute: only counted
    assert notes.note(3.5, "creating pod a/p4") is None
    clock.now += 30
    assert notes.note(1.0, "deleting pod a/p5") == (
        "deleting pod a/p5 waited 1.0 s for the client-side rate limit (KGAHP_QPS = 20, "
        "KGAHP_BURST = 40); 3 requests waited 1 s or more since the last such note, the "
        "longest 3.5 s. Raise both if the API server can take more.")
    clock.now += 61
    assert notes.note(1.5, "listing pods in a") == (
        "listing pods in a waited 1.5 s for the client-side rate limit (KGAHP_QPS = 20, "
        "KGAHP_BURST = 40). Raise both if the API server can take more.")


def test_kube_logs_a_request_held_back_by_its_own_rate_limit(caplog: Any) -> None:
    kube = Kube(client.ApiClient(client.Configuration()), KubeSettings(qps=2, burst=1))
    kube.throttle_notes = ThrottleNotes(kube.limiter, least=0.1)
    with caplog.at_level(logging.INFO, logger="kgahp.kube.api"):
        assert kube.call("creating pod a/p1", lambda: "ok") == "ok"
        assert kube.call("creating pod a/p2", lambda: "ok") == "ok"   # waits up to 0.5 s
    notes = [r.getMessage() for r in caplog.records if "rate limit" in r.getMessage()]
    assert len(notes) == 1
    assert re.fullmatch(r"creating pod a/p2 waited 0\.[1-5] s for the client-side rate limit "
                        r"\(KGAHP_QPS = 2, KGAHP_BURST = 1\)\. Raise both if the API server "
                        r"can take more\.", notes[0])
