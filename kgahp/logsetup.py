"""Logging in HTCondor's spirit: one file per GAHP instance, one line per event, never stdout."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import warnings
from typing import Callable, Optional, TextIO

from kgahp.threads import start_daemon

FORMAT = "%(asctime)s.%(msecs)03d [%(process)d] %(levelname)s %(name)s: %(message)s"
DATEFMT = "%m/%d/%y %H:%M:%S"


class SecondFormatter(logging.Formatter):
    """The standard Formatter, with the date text made once per second rather than once per
    record: kgahp logs a line or two per request, hundreds a second under a submit burst, and
    `time.strftime` of the local time was the costliest part of each line. The text is the
    same (`%(asctime)s` has whole seconds; the milliseconds come from `%(msecs)03d`)."""

    def __init__(self, fmt: str, datefmt: str) -> None:
        super().__init__(fmt, datefmt)
        self._cached: tuple[int, str] = (-1, "")    # (second, its text), replaced as one

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:
        if datefmt != self.datefmt or datefmt is None:   # not the configured format: as is
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._cached
        if cached[0] != second:
            cached = self._cached = (second, time.strftime(datefmt, self.converter(second)))
        return cached[1]


class BatchedLineHandler(logging.Handler):
    """Writes log lines in batches, off the threads that log them.

    A record is formatted where it is logged and its line appended to a list: no lock, no
    system call. A writer thread writes what has gathered `interval` seconds after the first
    line of a batch, in one write. A record of WARNING or above, `flush()` and the exit write at
    once, after the lines before them. Writing each line at once cost a submit burst ~0.25 ms
    of CPU per job and a quarter of its thread switches: 16 workers queued for the stream's
    lock and each write handed the interpreter lock to another thread (benchmark: 26 -> 19
    voluntary switches per submit). What a SIGKILL can lose is the last `interval` of INFO
    lines; the protocol server flushes before each RESULTS answer, so a result read is never
    ahead of what its request logged.
    """

    def __init__(self, stream: TextIO, interval: float = 0.05,
                 rotate: Optional[Callable[[TextIO], TextIO]] = None) -> None:
        super().__init__()
        self.stream = stream
        self.interval = interval
        self._rotate = rotate      # after each write: the stream to go on with (RotatingLog)
        self._pending: list[str] = []       # only `flush` removes, under _write_lock
        self._write_lock = threading.Lock()
        self._has_lines = threading.Event()
        self._closed = False
        start_daemon(self._write_batches, "log-writer")

    def handle(self, record: logging.LogRecord) -> bool:
        # no handler lock: emit only appends (atomic), and flush has its own
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._pending.append(line)
        if record.levelno >= logging.WARNING or self._closed:
            self.flush()
        elif not self._has_lines.is_set():
            self._has_lines.set()

    def flush(self) -> None:
        with self._write_lock:
            count = len(self._pending)
            if not count:
                return
            lines = self._pending[:count]
            del self._pending[:count]     # lines appended meanwhile stay, in order
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
                if self._rotate is not None:
                    self.stream = self._rotate(self.stream)
            except Exception:
                sys.stderr.write(f"kgahp: could not write {count} log line(s)\n")

    def _write_batches(self) -> None:
        while not self._closed:
            self._has_lines.wait()
            time.sleep(self.interval)       # let the batch gather
            self._has_lines.clear()
            self.flush()

    def close(self) -> None:
        self._closed = True
        self._has_lines.set()               # the writer thread ends
        self.flush()
        super().close()


def _open_log(path: str) -> TextIO:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8")


class RotatingLog:
    """HTCondor's way with a daemon log (MAX_<SUBSYS>_LOG): once the file has reached
    `max_bytes` it is renamed to `<path>.old`, replacing the one before, and a new file is
    begun. A GAHP runs for weeks and logs a line per request (per status poll too, at DEBUG);
    without this it fills the disk.
    Checked after each batch is written (one fstat), so a file ends up at most one batch over."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes

    def __call__(self, stream: TextIO) -> TextIO:
        if os.fstat(stream.fileno()).st_size < self.max_bytes:
            return stream
        try:
            os.replace(self.path, self.path + ".old")
        except OSError:
            pass    # renamed or removed by someone else: begin the new file anyway
        try:
            fresh = _open_log(self.path)
        except OSError:
            return stream   # no new file can be made (yet): go on in this one, try again later
        stream.close()
        return fresh


def setup_logging(path: str, level: str = "INFO", max_bytes: int = 0) -> None:
    """Send every log record (ours, the kubernetes client's, urllib3's, warnings) to `path`,
    or to stderr when `path` is empty. The file is created 0600: logs carry no secrets, but
    job ids and paths are nobody else's business. `max_bytes` > 0: see RotatingLog."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        if isinstance(h, BatchedLineHandler):
            h.close()
    handler: logging.Handler
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        handler = BatchedLineHandler(
            _open_log(path), rotate=RotatingLog(path, max_bytes) if max_bytes > 0 else None)
    else:
        handler = BatchedLineHandler(sys.stderr)
    handler.setFormatter(SecondFormatter(FORMAT, DATEFMT))
    # What the format never shows is not gathered for each record either (the logging HOWTO's
    # "Optimization"): the caller's file, line and function (a walk up the stack), the thread
    # and the multiprocessing process names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # The client libraries are chatty at DEBUG and may log request bodies (which can hold a
    # proxy); keep them at WARNING whatever our own level.
    for noisy in ("urllib3", "kubernetes", "kubernetes.client.rest"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
