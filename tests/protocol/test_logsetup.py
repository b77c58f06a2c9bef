"""The log line kgahp writes (the per-second date cache must not change a byte of it), and how it
writes them: in batches, off the threads that log, never losing or splitting a line."""

from __future__ import annotations

import io
import logging
import threading
import time
from pathlib import Path
from typing import Callable

from kgahp.logsetup import DATEFMT, FORMAT, BatchedLineHandler, SecondFormatter, setup_logging


def _record(created: float) -> logging.LogRecord:
    record = logging.LogRecord("kgahp.x", logging.INFO, __file__, 1, "reqid=%s", ("7",), None)
    record.created = created
    record.msecs = (created - int(created)) * 1000
    return record


def test_lines_equal_the_standard_formatters_across_seconds() -> None:
    cached, standard = SecondFormatter(FORMAT, DATEFMT), logging.Formatter(FORMAT, DATEFMT)
    times = [1_700_000_000.1, 1_700_000_000.9, 1_700_000_001.0, 1_700_000_000.5,
             1_700_086_400.25, 1_700_086_400.999]
    for created in times:
        record = _record(created)
        assert cached.format(record) == standard.format(record)
    assert cached.formatTime(_record(times[0]), "%H") == standard.formatTime(
        _record(times[0]), "%H")


def test_the_date_changes_with_the_second() -> None:
    cached = SecondFormatter("%(asctime)s", "%S")
    first = cached.format(_record(1_700_000_000.2))
    assert cached.format(_record(1_700_000_001.2)) != first
    assert cached.format(_record(1_700_000_000.7)) == first


class _Stream(io.StringIO):
    """A log stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    return logger


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_info_lines_are_written_together_soon_after_and_in_order() -> None:
    stream = _Stream()
    handler = BatchedLineHandler(stream, interval=0.05)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = _logger(handler, "kgahp.test.batched")
    try:
        for i in range(200):
            log.info("line %d", i)
        assert stream.getvalue() == ""                  # nothing written by the loggers
        assert _wait_for(lambda: stream.getvalue().count("\n") == 200)
        assert stream.getvalue() == "".join(f"line {i}\n" for i in range(200))
        assert stream.writes <= 2                       # one batch (two if it was split)
    finally:
        handler.close()


def test_a_warning_is_written_at_once_after_the_lines_before_it() -> None:
    stream = _Stream()
    handler = BatchedLineHandler(stream, interval=60.0)   # the writer thread never gets to it
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = _logger(handler, "kgahp.test.warning")
    try:
        log.info("first")
        log.debug("second")
        assert stream.getvalue() == ""
        log.warning("trouble")
        assert stream.getvalue() == "INFO first\nDEBUG second\nWARNING trouble\n"
        log.info("after")
        handler.flush()
        assert stream.getvalue().endswith("WARNING trouble\nINFO after\n")
    finally:
        handler.close()


def test_lines_from_many_threads_are_all_written_whole() -> None:
    stream = _Stream()
    handler = BatchedLineHandler(stream, interval=0.01)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = _logger(handler, "kgahp.test.threads")

    def work(t: int) -> None:
        for i in range(500):
            log.info("t%d-%d", t, i)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handler.close()
    lines = stream.getvalue().splitlines()
    assert sorted(lines) == sorted(f"t{t}-{i}" for t in range(8) for i in range(500))
    for t in range(8):   # each thread's own lines stay in its order
        mine = [line for line in lines if line.startswith(f"t{t}-")]
        assert mine == [f"t{t}-{i}" for i in range(500)]


def test_close_writes_what_is_left_and_later_lines_go_straight_out() -> None:
    stream = _Stream()
    handler = BatchedLineHandler(stream, interval=60.0)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = _logger(handler, "kgahp.test.close")
    log.info("pending")
    handler.close()
    assert stream.getvalue() == "pending\n"
    log.info("late")          # a thread still logging at exit
    assert stream.getvalue() == "pending\nlate\n"


def test_setup_logging_writes_a_0600_file_and_replaces_its_own_handler(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved, level, srcfile = list(root.handlers), root.level, logging._srcfile
    try:
        setup_logging(str(tmp_path / "a.log"))
        first = [h for h in root.handlers if isinstance(h, BatchedLineHandler)]
        setup_logging(str(tmp_path / "b.log"))
        second = [h for h in root.handlers if isinstance(h, BatchedLineHandler)]
        assert len(first) == len(second) == 1 and first[0] is not second[0]
        logging.getLogger("kgahp.test.setup").info("hello %s", "there")
        second[0].flush()
        assert "INFO kgahp.test.setup: hello there" in (tmp_path / "b.log").read_text()
        assert (tmp_path / "b.log").stat().st_mode & 0o777 == 0o600
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
            if isinstance(h, BatchedLineHandler):
                h.close()
        for h in saved:
            root.addHandler(h)
        root.setLevel(level)
        logging._srcfile = srcfile
        logging.logThreads = logging.logMultiprocessing = True
        logging.captureWarnings(False)
