"""The fixed thread pools that run asynchronous commands."""

from __future__ import annotations

import logging
import queue
from typing import Callable, Optional

from kgahp.threads import start_daemon

log = logging.getLogger(__name__)


class WorkerPool:
    """A fixed set of daemon threads: a stuck handler never keeps the process from exiting."""

    def __init__(self, name: str, size: int) -> None:
        self.size = size
        self.outstanding = 0        # accepted and not finished (guarded by the server's lock)
        self._tasks: queue.SimpleQueue[Optional[Callable[[], None]]] = queue.SimpleQueue()
        self._threads = [start_daemon(self._work, f"{name}-{i}") for i in range(size)]

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            try:
                task()
            except Exception:  # a task already catches handler errors; keep the thread anyway
                log.exception("pool task failed")

    def put(self, task: Callable[[], None]) -> None:
        self._tasks.put(task)

    def close(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)
