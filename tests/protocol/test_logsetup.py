"""The log line kgahp writes (the per-second date cache must not change a byte of it), and how it
writes them: in batches, off the threads that log, never losing or splitting a line."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, TextIO

import pytest

from kgahp import logsetup
from kgahp.config import settings_from_mapping
from kgahp.errors import ConfigError
from kgahp.logsetup import (
    DATEFMT,
    FORMAT,
    BatchedLineHandler,
    RotatingLog,
    SecondFormatter,
    setup_logging,
)


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


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, given back as it was: setup_logging replaces its handlers."""
    root = logging.getLogger()
    saved, level, srcfile = list(root.handlers), root.level, logging._srcfile
    try:
        yield root
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


def test_setup_logging_writes_a_0600_file_and_replaces_its_own_handler(
        tmp_path: Path, root_logger: logging.Logger) -> None:
    setup_logging(str(tmp_path / "a.log"))
    first = [h for h in root_logger.handlers if isinstance(h, BatchedLineHandler)]
    setup_logging(str(tmp_path / "b.log"))
    second = [h for h in root_logger.handlers if isinstance(h, BatchedLineHandler)]
    assert len(first) == len(second) == 1 and first[0] is not second[0]
    logging.getLogger("kgahp.test.setup").info("hello %s", "there")
    second[0].flush()
    assert "INFO kgahp.test.setup: hello there" in (tmp_path / "b.log").read_text()
    assert (tmp_path / "b.log").stat().st_mode & 0o777 == 0o600


def _lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_full_log_becomes_log_old_and_a_new_one_begins(tmp_path: Path) -> None:
    """Past max_bytes the file is renamed to .old (replacing the one before) and a new 0600
    file begun; no line is lost or split across the rotation, and no file grows past the
    bound by more than one batch."""
    path = tmp_path / "KGahpLog.alice"
    handler = BatchedLineHandler(open(path, "a"), interval=60,   # only flush() writes
                                 rotate=RotatingLog(str(path), max_bytes=1000))
    handler.setFormatter(logging.Formatter("%(message)s"))
    written: list[str] = []
    for batch in range(12):
        for i in range(5):                   # a batch: 5 lines of 40 bytes with their newline
            line = f"batch {batch:02d} line {i} " + "x" * 23
            written.append(line)
            handler.emit(logging.LogRecord("kgahp", logging.INFO, "", 0, line, None, None))
        handler.flush()
        assert path.stat().st_size < 1000 + 200
    handler.close()
    old, new = _lines_of(tmp_path / "KGahpLog.alice.old"), _lines_of(path)
    # 12 batches of 200 bytes: renamed after the 5th and the 10th; .old holds the 6th-10th
    assert old == written[25:50] and new == written[50:]
    for kept in (path, tmp_path / "KGahpLog.alice.old"):
        assert kept.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["KGahpLog.alice", "KGahpLog.alice.old"]


def test_when_no_new_log_can_be_made_lines_go_on_into_the_old_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "d.log"
    handler = BatchedLineHandler(open(path, "a"), interval=60,
                                 rotate=RotatingLog(str(path), max_bytes=10))
    handler.setFormatter(logging.Formatter("%(message)s"))

    def refuse(_path: str) -> TextIO:
        raise PermissionError("the log directory went read-only")

    monkeypatch.setattr(logsetup, "_open_log", refuse)
    for i in range(3):
        handler.emit(logging.LogRecord("kgahp", logging.INFO, "", 0, f"line {i}", None, None))
        handler.flush()
    monkeypatch.undo()
    handler.emit(logging.LogRecord("kgahp", logging.INFO, "", 0, "line 3", None, None))
    handler.flush()                    # a new file is made once it can be
    handler.emit(logging.LogRecord("kgahp", logging.INFO, "", 0, "line 4", None, None))
    handler.close()
    assert _lines_of(tmp_path / "d.log.old") == [f"line {i}" for i in range(4)]
    assert _lines_of(path) == ["line 4"]


def test_under_its_bound_the_log_is_never_renamed(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    rotate = RotatingLog(str(path), max_bytes=10_000)
    handler = BatchedLineHandler(open(path, "a"), interval=60, rotate=rotate)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for i in range(20):
        handler.emit(logging.LogRecord("kgahp", logging.INFO, "", 0, f"line {i}", None, None))
        handler.flush()
    handler.close()
    assert _lines_of(path) == [f"line {i}" for i in range(20)]
    assert not (tmp_path / "a.log.old").exists()


def test_setup_logging_rotates_at_kgahp_max_log(tmp_path: Path,
                                                root_logger: logging.Logger) -> None:
    path = tmp_path / "c.log"
    setup_logging(str(path), max_bytes=2000)
    handler = next(h for h in root_logger.handlers if isinstance(h, BatchedLineHandler))
    log = logging.getLogger("kgahp.test.rotation")
    for i in range(40):
        log.info("request %d %s", i, "y" * 60)
        handler.flush()
    text = (tmp_path / "c.log.old").read_text() + path.read_text()
    assert "request 39 " in text and path.stat().st_size < 2000 + 200


def test_kgahp_max_log_is_bytes_with_0_for_never_and_no_negative() -> None:
    assert settings_from_mapping({}).server.max_log == 100 * 2**20
    assert settings_from_mapping({"MAX_LOG": "0"}).server.max_log == 0
    with pytest.raises(ConfigError, match="KGAHP_MAX_LOG"):
        settings_from_mapping({"MAX_LOG": "-1"})
