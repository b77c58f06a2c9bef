"""A keyed work queue with the semantics of client-go's `util/workqueue`, and the workers that
drain it.

- `add(key)` marks a key dirty; a key is queued at most once however often it is added.
- A key is never handled by two workers at once. An `add` while its key is being handled is
  remembered and the key runs again after the running handler returns.
- The handler returns `None` (done) or a number of seconds after which the key runs again.
- A handler that raises is retried after an exponential backoff (per key: base·2ⁿ, capped);
  a success forgets the key's failure count.
- `add(key, after=s)` schedules a key for later; an earlier schedule wins over a later one.
- `add(key, after=s, batch=True)` does too, and the key counts as pending meanwhile
  (`wait_idle` waits for it): the adds of one key within `s` seconds make one run, as the
  Kubernetes Job controller batches the pod events of a Job.
- Once a key is done (not dirty, not running, not scheduled), the queue holds nothing of it.
- `stop(wait, drain=True)` is client-go's ShutDownWithDrain, bounded: new adds are ignored,
  the keys already queued (and the batched ones, brought forward) are handled, then the workers
  exit; keys scheduled for later are dropped (level-based: the next start reads them afresh).

Delayed keys wait in a heap that the workers themselves watch (no timer thread): a worker with
nothing to do sleeps until the earliest due key or the next `add`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Hashable
from typing import Callable, Generic, Optional, TypeVar

from kgahp.threads import start_daemon

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    """All state is guarded by one condition variable, `_cv`; handlers run outside it."""

    def __init__(self, handler: Callable[[K], Optional[float]], *, workers: int,
                 name: str = "reconcile", base_delay: float = 0.5, max_delay: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if workers < 1:
            raise ValueError("a work queue needs at least one worker")
        self._handler = handler
        self._workers = workers
        self._name = name
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._clock = clock
        self._cv = threading.Condition()
        self._ready: deque[K] = deque()      # keys to hand to a worker, in order
        self._dirty: set[K] = set()          # keys in _ready, or to run again after `done`
        self._running: set[K] = set()        # keys a worker is handling now
        self._due: dict[K, float] = {}       # delayed keys: when each is due
        self._batched: set[K] = set()        # delayed keys that an add(batch=True) waits for
        self._heap: list[tuple[float, int, K]] = []   # (due, seq, key); stale entries skipped
        self._seq = itertools.count()
        self._failures: dict[K, int] = {}    # consecutive failures of keys not yet done
        self._stopped = False
        self._draining = False
        self._idle_waiters = 0               # callers in wait_idle (only they need notify_all)
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ producers
    def add(self, key: K, after: float = 0.0, *, batch: bool = False) -> None:
        with self._cv:
            if self._stopped or self._draining:
                return
            if after > 0:
                due = self._clock() + after
                if key in self._dirty:
                    return
                if batch:
                    self._batched.add(key)
                if self._due.get(key, float("inf")) <= due:
                    return
                self._due[key] = due
                entry = (due, next(self._seq), key)
                heapq.heappush(self._heap, entry)
                if self._heap[0] is not entry:
                    return   # the workers already wait for an earlier entry: none to wake
            else:
                self._mark_dirty(key)
            self._cv.notify()

    def _mark_dirty(self, key: K) -> None:   # holding _cv
        self._batched.discard(key)
        if self._due.pop(key, None) is not None and len(self._heap) > 2 * len(self._due) + 64:
            # entries of keys that ran before they were due: drop them now rather than when
            # they come due (a pod's retention can be days)
            self._heap = [e for e in self._heap if self._due.get(e[2]) == e[0]]
            heapq.heapify(self._heap)
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._running:
            self._ready.append(key)

    # ------------------------------------------------------------------ inspection
    def busy(self, key: K) -> bool:
        """The key is queued or being handled now (not merely scheduled for later)."""
        with self._cv:
            return key in self._dirty or key in self._running

    def scheduled(self, key: K) -> bool:
        with self._cv:
            return key in self._due

    def __len__(self) -> int:
        """Keys that the queue remembers in any way (ready, running, delayed or failing)."""
        with self._cv:
            return len(self._dirty | self._running | set(self._due) | set(self._failures))

    def wait_idle(self, timeout: float, *, include_delayed: bool = False) -> bool:
        """Wait until no key is ready, running or batched (and, if asked, none is delayed). For
        tests and shutdown."""
        until = time.monotonic() + timeout
        with self._cv:
            self._idle_waiters += 1
            try:
                while self._dirty or self._running or self._batched or (
                        include_delayed and self._due):
                    left = until - time.monotonic()
                    if left <= 0:
                        return False
                    self._cv.wait(min(left, 0.05))
                return True
            finally:
                self._idle_waiters -= 1

    # ------------------------------------------------------------------ workers
    def start(self) -> None:
        with self._cv:
            if self._threads:
                return
            for i in range(self._workers):
                self._threads.append(start_daemon(self._work, f"{self._name}-{i}"))

    def stop(self, wait: float = 0.0, *, drain: bool = False) -> bool:
        """Stop handing out keys; running handlers finish. With `drain`, the keys already
        queued are handled first (batched keys too, now). Waits up to `wait` seconds; True
        when every worker has exited by then."""
        with self._cv:
            if drain and not self._stopped and self._threads:
                self._draining = True
                for key in list(self._batched):
                    self._mark_dirty(key)
            else:
                self._stopped = True
            self._cv.notify_all()
        until = time.monotonic() + wait
        for t in self._threads:
            t.join(max(0.0, until - time.monotonic()))
        with self._cv:
            self._stopped = True    # a drain that ran out of time hands out nothing more
            self._cv.notify_all()
        return not any(t.is_alive() for t in self._threads)

    def _get(self) -> Optional[K]:
        with self._cv:
            while True:
                if self._stopped:
                    return None
                now = self._clock()
                while self._heap and self._heap[0][0] <= now and not self._draining:
                    due, _, key = heapq.heappop(self._heap)
                    if self._due.get(key) == due:
                        self._mark_dirty(key)
                if self._ready:
                    key = self._ready.popleft()
                    self._dirty.discard(key)
                    self._running.add(key)
                    return key
                if self._draining:
                    if not self._running:
                        self._cv.notify_all()   # the last one out lets the others go too
                        return None
                    self._cv.wait()    # a running key added again runs once more
                    continue
                timeout = self._heap[0][0] - now if self._heap else None
                self._cv.wait(timeout)

    def _done(self, key: K, again: Optional[float]) -> None:
        with self._cv:
            self._running.discard(key)
            if key in self._dirty:
                self._ready.append(key)
                self._cv.notify()
            elif again is not None and not (self._stopped or self._draining):
                due = self._clock() + max(0.0, again)
                if self._due.get(key, float("inf")) > due:
                    self._due[key] = due
                    heapq.heappush(self._heap, (due, next(self._seq), key))
                self._cv.notify()
            if self._idle_waiters or self._draining:
                # for wait_idle and a drain only: waking every idle worker after each key
                # (each to find nothing and sleep again) cost several thread switches per
                # reconcile
                self._cv.notify_all()

    def _work(self) -> None:
        while True:
            key = self._get()
            if key is None:
                return
            again: Optional[float] = None
            try:
                again = self._handler(key)
                with self._cv:
                    self._failures.pop(key, None)
            except Exception:
                with self._cv:
                    n = self._failures.get(key, 0) + 1
                    self._failures[key] = n
                again = min(self._max_delay, self._base_delay * 2 ** (n - 1))
                log.exception("%s of %s failed (%d in a row); again in %.1fs", self._name,
                              key, n, again)
            self._done(key, again)

    def failures(self, key: K) -> int:
        with self._cv:
            return self._failures.get(key, 0)
