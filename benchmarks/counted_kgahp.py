"""kgahp with a client-side request log: `python benchmarks/counted_kgahp.py` is `python -m kgahp`
plus one line per HTTP request kgahp sends, written to $KGAHP_BENCH_REQUEST_LOG.

The benchmarks start kgahp this way so that API requests can be counted on any cluster, not only
by the simulator's server-side counter. Every request of the official client goes through
urllib3's `HTTPConnectionPool.urlopen` (kgahp disables urllib3's own retries, so one call is one
request on the wire); the wrapper appends a tuple there and a background thread writes the lines
every 50 ms, so kgahp's measured CPU barely changes. A line is
`<sent> <answered> <thread> <METHOD> <status> <path?query>` (monotonic seconds, which compare
across processes on Linux; status 0 when no response came). No headers are logged, so no token.
"""

from __future__ import annotations

import os
import sys

# run as a script, this file's folder (benchmarks/, whose profile.py shadows the stdlib's) would
# come first on sys.path for everything kgahp imports
_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]

import atexit  # noqa: E402
import runpy  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import IO, Any  # noqa: E402

from kgahp.threads import start_daemon  # noqa: E402

LOG_ENV = "KGAHP_BENCH_REQUEST_LOG"


def install(path: str, interval: float = 0.05) -> None:
    import urllib3.connectionpool as connectionpool

    records: list[tuple[float, float, int, str, int, str]] = []
    original = connectionpool.HTTPConnectionPool.urlopen

    def urlopen(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        sent, status = time.monotonic(), 0
        try:
            resp = original(self, method, url, *args, **kwargs)
            status = int(resp.status)
            return resp
        finally:
            records.append((sent, time.monotonic(), threading.get_ident(), method, status, url))

    connectionpool.HTTPConnectionPool.urlopen = urlopen  # type: ignore[method-assign]
    out: IO[str] = open(path, "a")
    lock = threading.Lock()

    def flush() -> None:
        with lock:
            count = len(records)       # only this function removes, so the first `count` stay
            if not count:
                return
            batch = records[:count]
            del records[:count]
            out.write("".join(f"{s:.6f} {e:.6f} {t} {m} {st} {u}\n"
                              for s, e, t, m, st, u in batch))
            out.flush()

    def loop() -> None:
        while True:
            time.sleep(interval)
            flush()

    start_daemon(loop, "bench-request-log")   # named for /proc: the benchmark's own thread
    atexit.register(flush)


def main() -> None:
    path = os.environ.get(LOG_ENV, "")
    if path:
        install(path)
    runpy.run_module("kgahp", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
