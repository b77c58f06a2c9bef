"""The job store writes a changed record in place; what a reopened store reads is exactly the
latest state of every record, whatever sequence of writes made it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from kgahp.model import JobState
from kgahp.store import JobStore


def test_updates_and_resubmits_read_back_after_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "jobs.sqlite")
    store = JobStore(path)
    store.record_submit("a", "ns", 0, "[ A = 1 ]")
    store.record_submit("b", "ns", 0, "[ B = 1 ]")
    store.update("a", started=True)
    assert store.record_final("a", 0, JobState(4, exit_code=0))
    store.update("a", reported=True)
    store.record_submit("b", "ns", 1, "[ B = 2 ]", restarts=1)   # a new attempt replaces
    store.update("b", cancelled=True)
    expected = {r.job: r for r in store.jobs()}
    store.close()

    again = JobStore(path)
    assert {r.job: r for r in again.jobs()} == expected
    a, b = again.get("a"), again.get("b")
    assert a is not None and a.started and a.reported and a.final == JobState(4, exit_code=0)
    assert b is not None and (b.attempt, b.ad, b.restarts, b.cancelled) == (1, "[ B = 2 ]", 1,
                                                                          True)
    assert b.final is None and not b.started
    again.close()
    with sqlite3.connect(path) as db:      # one row per job, however often it was written
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone() == (2,)
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o600)
