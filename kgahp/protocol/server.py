"""The GAHP server loop: read request lines, answer at once, run the work in thread pools.

One thread (the caller's) reads stdin and writes every immediate reply; asynchronous commands are
answered `S` straight away and executed by two bounded pools, so cheap status/ping calls never
wait behind slow submits. Finished requests become result lines in a queue that `RESULTS` drains.
Every write to the protocol stream goes through one lock, one whole line (or block) at a time.
"""

from __future__ import annotations

import datetime
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import BinaryIO, Callable, Optional

from kgahp.errors import KgahpError
from kgahp.protocol import replies
from kgahp.protocol.commands import (
    ASYNC_COMMANDS,
    COMMAND_NAMES,
    INTERNAL_ERROR,
    SYNC_COMMANDS,
    AsyncCommand,
    Handlers,
    job_subject,
    printable,
    result_code,
    valid_reqid,
)
from kgahp.protocol.escaping import MAX_LINE_BYTES, LineReader, OversizeLine, split_line
from kgahp.protocol.pool import WorkerPool
from kgahp.protocol.replies import banner, write_banner

__all__ = ["COMMAND_NAMES", "INTERNAL_ERROR", "GahpServer", "Handlers", "banner", "serve",
           "write_banner"]

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 2.0
_ACCEPTED = replies.success()          # `S`: the immediate answer to every accepted request


# --- the server


class GahpServer:
    """One GAHP session over a pair of byte streams. `run()` returns the exit code (0)."""

    def __init__(self, handlers: Handlers, *, workers: int, max_queued: int, stdin: BinaryIO,
                 out: BinaryIO, version: str, max_line: int = MAX_LINE_BYTES,
                 shutdown_grace: float = SHUTDOWN_GRACE_SECONDS,
                 date: Optional[datetime.date] = None, banner_sent: bool = False) -> None:
        self._handlers = handlers
        self._stdin = stdin
        self._out = out
        self._banner = banner(version, date)
        self._banner_sent = banner_sent
        self._max_line = max_line
        self._max_queued = max(0, max_queued)
        self._grace = shutdown_grace
        workers = max(1, workers)
        # pings and the few statuses memory cannot answer: a handful of threads is plenty
        self._fast_size = max(2, min(8, workers // 2))
        self._slow_size = workers
        self._lock = threading.Lock()         # guards stdout, the result queue and counters
        self._idle = threading.Condition(self._lock)
        self._results: list[bytes] = []
        self._async_mode = False
        self._notice_sent = False
        self._closing = False
        self._broken = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)  # waking must never block (signal handler)
        self._fast: Optional[WorkerPool] = None
        self._slow: Optional[WorkerPool] = None

    # --- output

    def _write(self, data: bytes) -> None:
        """Write whole lines; caller holds the lock. A closed stdout ends the session."""
        if self._broken:
            return
        try:
            self._out.write(data)
            self._out.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError, OSError) as exc:
            log.warning("protocol stream closed (%s); stopping", type(exc).__name__)
            self._broken = True
            self._wake()

    def _reply(self, data: bytes) -> None:
        with self._lock:
            self._write(data)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    # --- input

    def _chunks(self) -> Callable[[], bytes]:
        """A chunk reader for LineReader that also wakes up on SIGTERM or a broken stdout."""
        try:
            fd = self._stdin.fileno()
        except (AttributeError, OSError, ValueError):
            fd = -1
        if fd < 0:
            read1 = getattr(self._stdin, "read1", None) or self._stdin.read

            def read_stream() -> bytes:
                return b"" if self._closing or self._broken else read1(65536)
            return read_stream

        poller = select.poll()            # poll, not select: no FD_SETSIZE limit
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        poller.register(self._wake_r, select.POLLIN)

        def read_fd() -> bytes:
            while not (self._closing or self._broken):
                ready = {ready_fd for ready_fd, _ in poller.poll()}
                if self._wake_r in ready:
                    return b""
                if fd in ready:
                    try:
                        return os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    except OSError as exc:      # e.g. stdin closed under us: treat as EOF
                        log.warning("cannot read stdin (%s); stopping", exc)
                        return b""
            return b""
        return read_fd

    # --- main loop

    def run(self) -> int:
        self._fast = WorkerPool("gahp-status", self._fast_size)
        self._slow = WorkerPool("gahp-submit", self._slow_size)
        restore = self._install_sigterm()
        try:
            if not self._banner_sent:
                self._reply(self._banner)
            reader: Iterator[bytes | OversizeLine] = iter(
                LineReader(self._chunks(), self._max_line))
            for item in reader:
                if isinstance(item, OversizeLine):
                    log.warning("discarded a request line of %d bytes (limit %d)",
                                item.length, self._max_line)
                    self._reply(replies.error(f"Line longer than {self._max_line} bytes"))
                    continue
                if not self._handle(split_line(item)):
                    break
                if self._broken or self._closing:
                    break
            else:
                if not (self._closing or self._broken):
                    log.info("stdin closed; exiting")
        finally:
            self._shutdown()
            restore()
        return 0

    def _install_sigterm(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_term(signum: int, frame: Optional[FrameType]) -> None:
            self._closing = True
            self._wake()

        previous = signal.signal(signal.SIGTERM, on_term)

        def restore() -> None:
            signal.signal(signal.SIGTERM, previous)
        return restore

    def _shutdown(self) -> None:
        """Stop taking work; give running handlers a short grace, never hang on them."""
        if self._closing:
            log.info("SIGTERM received; exiting")
        deadline = time.monotonic() + self._grace
        with self._lock:
            self._closing = True
            while self._outstanding() and time.monotonic() < deadline:
                self._idle.wait(max(0.0, deadline - time.monotonic()))
            left = self._outstanding()
        if left:
            log.warning("exiting with %d request(s) still running", left)
        for pool in (self._fast, self._slow):
            if pool is not None:
                pool.close()
        if not left:     # a still-running handler may yet touch the wake pipe: leave it open
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)

    def _outstanding(self) -> int:
        return sum(p.outstanding for p in (self._fast, self._slow) if p is not None)

    # --- commands

    def _handle(self, argv: list[str]) -> bool:
        """Answer one request line. Returns False when the session should end (QUIT)."""
        name = argv[0].upper()
        args = argv[1:]
        command = ASYNC_COMMANDS.get(name)
        expected = 0 if name in SYNC_COMMANDS else command.params if command else -1
        if expected < 0:
            self._refuse(name, "Unknown command")
        elif len(args) != expected:
            self._refuse(name, f"expected {expected} parameters, {len(args)} found")
        elif command is None:
            return self._handle_sync(name)
        elif not valid_reqid(args[0]):
            self._refuse(name, "Invalid request id")
        else:
            self._dispatch(name, command, str(int(args[0])), args[1:])
        return True

    def _refuse(self, name: str, reason: str) -> None:
        log.warning("refused request %s: %s", printable(name, 60), reason)
        self._reply(replies.error(reason))

    def _handle_sync(self, name: str) -> bool:
        if name == "COMMANDS":
            self._reply(replies.success(*COMMAND_NAMES))
        elif name == "VERSION":
            self._reply(b"S " + self._banner)
        elif name == "QUIT":
            self._reply(replies.success())
            log.info("QUIT received; exiting")
            return False
        elif name == "ASYNC_MODE_ON":
            with self._lock:
                self._async_mode = True
                self._notice_sent = False
                self._write(replies.success("Async mode on"))
        elif name == "ASYNC_MODE_OFF":
            with self._lock:
                self._async_mode = False
                self._write(replies.success("Async mode off"))
        elif name == "RESULTS":
            with self._lock:
                batch, self._results = self._results, []
                self._notice_sent = False
                _flush_logs()
                self._write(b"".join([replies.results_header(len(batch)), *batch]))
            if batch:
                log.debug("RESULTS delivered %d result(s)", len(batch))
        return True

    def _dispatch(self, name: str, command: AsyncCommand, reqid: str, args: list[str]) -> None:
        pool = self._slow if command.slow else self._fast
        assert pool is not None
        with self._lock:
            waiting = pool.outstanding - pool.size
            if waiting >= self._max_queued and self._outstanding() > 0:
                log.warning("reqid=%s cmd=%s refused: %d requests waiting", reqid, name, waiting)
                self._write(replies.threads_limit())
                return
            pool.outstanding += 1
            self._write(_ACCEPTED)
        started = time.monotonic()
        # A status the cache answers is answered here: handing it to a worker cost more than
        # the answer (a queue, a thread wake-up, the interpreter lock passed twice).
        now = self._execute_now(name, command, reqid, args)
        if now is not None:
            self._finish(pool, now)
            self._log_done(reqid, name, args, now, started)
            return

        def task() -> None:
            line: Optional[bytes] = None
            try:
                line = self._execute(name, command, reqid, args)
            finally:
                if line is None:     # only if _execute itself broke (e.g. MemoryError)
                    line = command.fail(reqid, INTERNAL_ERROR)
                self._finish(pool, line)
            self._log_done(reqid, name, args, line, started)

        pool.put(task)

    @staticmethod
    def _log_done(reqid: str, name: str, args: list[str], line: bytes, started: float) -> None:
        code = result_code(line)
        # The gridmanager polls every job's status over and over: an answered poll is a DEBUG
        # line (at INFO it was most of the log, and 12% of a restart's CPU at 10,000 jobs);
        # a failed one, and every other request, stays INFO.
        level = logging.DEBUG if name == "BLAH_JOB_STATUS" and code == "0" else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, "reqid=%s cmd=%s %s code=%s ms=%.1f", reqid, name,
                    job_subject(name, args), code, (time.monotonic() - started) * 1000)

    def _finish(self, pool: WorkerPool, line: bytes) -> None:
        """Queue a result line and send the async notice once per RESULTS cycle."""
        with self._lock:
            pool.outstanding -= 1
            self._results.append(line)
            if self._async_mode and not self._notice_sent and not self._closing:
                self._notice_sent = True
                self._write(replies.ASYNC_NOTICE)
            self._idle.notify_all()

    def _execute_now(self, name: str, command: AsyncCommand, reqid: str,
                     args: list[str]) -> Optional[bytes]:
        """The command's result if it can be had at once from memory (`command.now`), else
        None. A failure becomes a failure result, as on a worker."""
        if command.now is None:
            return None
        return self._execute(name, command, reqid, args, command.now)

    def _execute(self, name: str, command: AsyncCommand, reqid: str, args: list[str],
                 run: Optional[Callable[[Handlers, str, list[str]], Optional[bytes]]] = None
                 ) -> Optional[bytes]:
        """Run a handler; any exception becomes a failure result, never a dead server."""
        try:
            return (run or command.run)(self._handlers, reqid, args)
        except KgahpError as exc:
            log.warning("reqid=%s cmd=%s failed: %s", reqid, name, exc)
            return command.fail(reqid, str(exc))
        except Exception:
            log.exception("reqid=%s cmd=%s: handler raised", reqid, name)
            return command.fail(reqid, INTERNAL_ERROR)


def _flush_logs() -> None:
    """What the requests of these results logged reaches the log before the results go out
    (kgahp/logsetup.py writes log lines in batches)."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def serve(handlers: Handlers, *, workers: int, max_queued: int, stdin: BinaryIO, out: BinaryIO,
          version: str, max_line: int = MAX_LINE_BYTES,
          shutdown_grace: float = SHUTDOWN_GRACE_SECONDS, banner_sent: bool = False) -> int:
    """Run a GAHP session until stdin EOF, QUIT or SIGTERM; returns the exit code (0).

    Writes the banner first unless `banner_sent` (see `write_banner`).
    """
    server = GahpServer(handlers, workers=workers, max_queued=max_queued, stdin=stdin, out=out,
                        version=version, max_line=max_line, shutdown_grace=shutdown_grace,
                        banner_sent=banner_sent)
    return server.run()
