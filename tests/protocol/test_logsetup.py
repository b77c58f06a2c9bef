"""The log line kgahp writes: the per-second date cache must not change a byte of it."""

from __future__ import annotations

import logging

from kgahp.logsetup import DATEFMT, FORMAT, SecondFormatter


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
