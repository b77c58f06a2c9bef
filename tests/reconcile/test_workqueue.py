"""The keyed work queue: client-go workqueue semantics, with real worker threads."""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional

import pytest

from kgahp.workqueue import WorkQueue


def _eventually(cond: Callable[[], object], timeout: float = 5.0) -> bool:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if cond():
            return True
        time.sleep(0.005)
    return False


def test_add_while_running_runs_the_key_again_after_done() -> None:
    started = threading.Event()
    release = threading.Event()
    runs: list[str] = []

    def handler(key: str) -> Optional[float]:
        runs.append(key)
        if len(runs) == 1:
            started.set()
            release.wait(5)
        return None

    q: WorkQueue[str] = WorkQueue(handler, workers=4)
    q.start()
    try:
        q.add("a")
        assert started.wait(5)
        q.add("a")      # while "a" runs: must run once more afterwards
        q.add("a")      # ... and only once, however often it is added
        release.set()
        assert q.wait_idle(5)
        assert runs == ["a", "a"]
    finally:
        q.stop(wait=1)


def test_one_key_is_never_handled_by_two_workers_at_once() -> None:
    active: dict[str, int] = {}
    most: dict[str, int] = {}
    guard = threading.Lock()
    count = 0

    def handler(key: str) -> Optional[float]:
        nonlocal count
        with guard:
            active[key] = active.get(key, 0) + 1
            most[key] = max(most.get(key, 0), active[key])
            count += 1
        time.sleep(0.002)
        with guard:
            active[key] -= 1
        return None

    q: WorkQueue[str] = WorkQueue(handler, workers=8)
    q.start()
    try:
        def producer() -> None:
            for i in range(300):
                q.add(f"k{i % 3}")
        threads = [threading.Thread(target=producer) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert q.wait_idle(10)
        assert set(most) == {"k0", "k1", "k2"}
        assert max(most.values()) == 1, most
        assert count >= 3
    finally:
        q.stop(wait=1)


def test_different_keys_run_in_parallel() -> None:
    barrier = threading.Barrier(3, timeout=5)

    def handler(key: str) -> Optional[float]:
        barrier.wait()   # three keys must be inside the handler together
        return None

    q: WorkQueue[str] = WorkQueue(handler, workers=3)
    q.start()
    try:
        for k in "abc":
            q.add(k)
        assert q.wait_idle(5)
        assert not barrier.broken
    finally:
        q.stop(wait=1)


def test_failures_back_off_exponentially_and_success_forgets_them() -> None:
    times: list[float] = []

    def handler(key: str) -> Optional[float]:
        times.append(time.monotonic())
        if len(times) < 4:
            raise RuntimeError("transient")
        return None

    q: WorkQueue[str] = WorkQueue(handler, workers=2, base_delay=0.05, max_delay=1.0)
    q.start()
    try:
        q.add("x")
        assert _eventually(lambda: len(times) == 4)
        assert q.wait_idle(5, include_delayed=True)
        gaps = [b - a for a, b in zip(times, times[1:])]
        # 0.05, 0.1, 0.2 s: each wait at least the backoff, and growing
        for gap, want in zip(gaps, (0.05, 0.1, 0.2)):
            assert gap >= want * 0.9, gaps
        assert gaps[2] > gaps[0]
        assert q.failures("x") == 0
        assert len(q) == 0
    finally:
        q.stop(wait=1)


def test_backoff_is_capped() -> None:
    calls: list[float] = []

    def handler(key: str) -> Optional[float]:
        calls.append(time.monotonic())
        raise RuntimeError("always")

    q: WorkQueue[str] = WorkQueue(handler, workers=1, base_delay=0.01, max_delay=0.03)
    q.start()
    try:
        q.add("x")
        assert _eventually(lambda: len(calls) >= 8)
        gaps = [b - a for a, b in zip(calls[4:], calls[5:])]
        assert all(g < 0.5 for g in gaps), gaps
        assert q.failures("x") >= 7
    finally:
        q.stop(wait=1)


def test_requeue_after_runs_the_key_later_and_an_earlier_add_wins() -> None:
    times: list[float] = []

    def handler(key: str) -> Optional[float]:
        times.append(time.monotonic())
        return 0.2 if len(times) == 1 else None

    q: WorkQueue[str] = WorkQueue(handler, workers=1)
    q.start()
    try:
        q.add("x")
        assert _eventually(lambda: len(times) == 1)
        assert _eventually(lambda: q.scheduled("x"))
        assert _eventually(lambda: len(times) == 2)
        assert times[1] - times[0] >= 0.18
        q.add("x", after=30)
        q.add("x", after=0.05)    # the earlier schedule wins
        assert _eventually(lambda: len(times) == 3, timeout=2)
        q.add("x", after=0.05)
        q.add("x", after=30)      # a later one does not postpone it
        assert _eventually(lambda: len(times) == 4, timeout=2)
    finally:
        q.stop(wait=1)


def test_no_memory_of_a_key_is_left_after_it_is_done() -> None:
    def handler(key: int) -> Optional[float]:
        if key % 7 == 0 and not seen.get(key):
            seen[key] = True
            raise RuntimeError("once")
        return None

    seen: dict[int, bool] = {}
    q: WorkQueue[int] = WorkQueue(handler, workers=4, base_delay=0.01)
    q.start()
    try:
        for i in range(2000):
            q.add(i)
        for i in range(0, 50):
            q.add(i, after=0.02)
        assert q.wait_idle(10, include_delayed=True)
        assert _eventually(lambda: len(q) == 0)
        assert not q._dirty and not q._running and not q._due and not q._failures
        assert _eventually(lambda: not q._heap)
    finally:
        q.stop(wait=1)


def test_a_key_run_early_leaves_no_entry_until_its_late_schedule() -> None:
    q: WorkQueue[int] = WorkQueue(lambda k: None, workers=2)
    q.start()
    try:
        for i in range(500):
            q.add(i, after=3600)    # e.g. a finished pod's retention
        for i in range(500):
            q.add(i)                # ... but an event made each run now
        assert q.wait_idle(5, include_delayed=True)
        assert len(q) == 0 and len(q._heap) <= 64
    finally:
        q.stop(wait=1)


def test_stop_ends_the_workers_and_refuses_new_work() -> None:
    ran: list[str] = []
    q: WorkQueue[str] = WorkQueue(lambda k: ran.append(k) and None, workers=2)
    q.start()
    q.stop(wait=2)
    q.add("late")
    time.sleep(0.05)
    assert ran == []
    assert all(not t.is_alive() for t in q._threads)


def test_a_queue_needs_a_worker() -> None:
    with pytest.raises(ValueError):
        WorkQueue(lambda k: None, workers=0)


def test_batched_adds_of_a_key_make_one_run_that_wait_idle_waits_for() -> None:
    runs: list[tuple[str, float]] = []
    q: WorkQueue[str] = WorkQueue(lambda key: runs.append((key, time.monotonic())), workers=2)
    q.start()
    try:
        first = time.monotonic()
        for _ in range(5):                    # a pod's events in quick succession
            q.add("a", 0.2, batch=True)
            time.sleep(0.01)
        q.add("b", 0.2, batch=True)
        assert not q.busy("a") and q.scheduled("a")
        assert q.wait_idle(5)                 # not idle while a batched key is due
        assert sorted(k for k, _ in runs) == ["a", "b"]
        assert runs[0][1] - first >= 0.19     # the batch waited for its period ...
        assert len(q) == 0
        q.add("a", 0.2, batch=True)
        q.add("a")                            # ... unless an immediate add came
        assert _eventually(lambda: len(runs) == 3)
        assert q.wait_idle(5)
        assert len(runs) == 3                 # the batched add ran with it, not again
    finally:
        q.stop(wait=1)


def test_a_batched_add_shortens_a_later_schedule_and_keeps_an_earlier_one() -> None:
    runs: list[float] = []
    q: WorkQueue[str] = WorkQueue(lambda key: runs.append(time.monotonic()), workers=1)
    q.start()
    try:
        start = time.monotonic()
        q.add("a", 3600.0)                    # a retention far away
        q.add("a", 0.1, batch=True)           # an event: the key runs soon
        assert q.wait_idle(5)
        assert len(runs) == 1 and runs[0] - start < 2.0
        q.add("a", 0.05)                      # a retry due before the batch period ends
        q.add("a", 1.0, batch=True)
        assert q.wait_idle(5)                 # waits for the batched add, met by the retry
        assert len(runs) == 2 and runs[1] - runs[0] < 0.9
    finally:
        q.stop(wait=1)


def test_sleeping_workers_meet_every_schedule_whatever_the_order_of_the_adds() -> None:
    runs: dict[str, float] = {}

    def handler(key: str) -> None:
        runs[key] = time.monotonic()

    q: WorkQueue[str] = WorkQueue(handler, workers=2)
    q.start()
    try:
        start = time.monotonic()
        q.add("late", 0.6)       # the workers sleep until it is due ...
        time.sleep(0.05)
        q.add("later", 0.9)      # ... a later one wakes nobody, and still runs
        q.add("early", 0.1)      # an earlier one wakes a worker to shorten its sleep
        assert q.wait_idle(5, include_delayed=True)
        assert runs["early"] - start < 0.5
        assert runs["early"] < runs["late"] < runs["later"]
        assert runs["late"] - start >= 0.55 and runs["later"] - start >= 0.9
    finally:
        q.stop(wait=1)


def test_a_draining_stop_handles_what_is_queued_and_nothing_new() -> None:
    """client-go's ShutDownWithDrain, bounded: the keys queued when the stop comes are handled
    (a batched one at once), a key scheduled for later is dropped, an add meanwhile is ignored,
    and no handler's retry is scheduled."""
    gate = threading.Event()
    runs: list[str] = []

    def handler(key: str) -> Optional[float]:
        if key == "first":
            gate.wait(5)
        runs.append(key)
        return 0.01 if key == "again" else None

    q: WorkQueue[str] = WorkQueue(handler, workers=2)
    q.start()
    q.add("first")
    assert _eventually(lambda: q.busy("first"))
    for key in ("a", "b", "again"):
        q.add(key)
    q.add("batched", 30, batch=True)
    q.add("later", 30)
    stopper = threading.Thread(target=lambda: q.stop(wait=5, drain=True))
    started = time.monotonic()
    stopper.start()
    # the drain has begun once the batched key is brought forward (no longer scheduled)
    assert _eventually(lambda: not q.scheduled("batched"))
    q.add("new")                     # refused: the queue is draining
    gate.set()
    stopper.join(6)
    assert not stopper.is_alive() and time.monotonic() - started < 3
    assert sorted(runs) == ["a", "again", "b", "batched", "first"]


def test_a_draining_stop_gives_up_after_its_wait() -> None:
    """A handler stuck on a dead API server must not hold the GAHP's exit: after `wait` the
    queue stops handing out keys, and says its workers did not all finish."""
    release = threading.Event()
    runs: list[str] = []

    def handler(key: str) -> Optional[float]:
        runs.append(key)
        release.wait(10)
        return None

    q: WorkQueue[str] = WorkQueue(handler, workers=1)
    q.start()
    q.add("stuck")
    assert _eventually(lambda: q.busy("stuck"))
    q.add("queued")
    started = time.monotonic()
    assert q.stop(wait=0.3, drain=True) is False
    assert time.monotonic() - started < 2
    release.set()
    time.sleep(0.2)
    assert runs == ["stuck"]         # the stop came first: "queued" is never handed out
