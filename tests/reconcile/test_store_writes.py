"""The job store writes a changed record in place; what a reopened store reads is exactly the
latest state of every record, whatever sequence of writes made it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import classad2
import pytest
from harness import sim_service

from kgahp.errors import StoreError
from kgahp.model import JobState
from kgahp.podspec import names
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


def _fill(store: JobStore, path: str) -> list[str]:
    """Record jobs until SQLite says the disk is full (the page limit stands in for a full
    disk: the same SQLITE_FULL); the jobs recorded before that."""
    with sqlite3.connect(path) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages + 2}")   # the store's own connection
    recorded = []
    for i in range(1000):
        try:
            store.record_submit(f"job-{i}", "ns", 0, "[ Pad = \"" + "x" * 2000 + "\" ]")
        except StoreError as exc:
            assert str(exc).startswith(f"kgahp cannot write its job store {path}: ")
            assert "full" in str(exc) and "KGAHP_STATE_DIR" in str(exc)
            return recorded
        recorded.append(f"job-{i}")
    raise AssertionError("the store never filled up")


def test_a_full_disk_is_a_store_error_and_the_mirror_keeps_only_what_was_written(
        tmp_path: Path) -> None:
    path = str(tmp_path / "jobs.sqlite")
    store = JobStore(path)
    recorded = _fill(store, path)
    assert recorded and [r.job for r in store.jobs()] == recorded   # the refused one is not
    failed = f"job-{len(recorded)}"
    assert store.get(failed) is None
    before = store.get(recorded[0])
    with pytest.raises(StoreError):                  # a write that needs more pages
        store.update(recorded[0], started=True, ad="[ Pad = \"" + "y" * 20_000 + "\" ]")
    assert store.get(recorded[0]) == before
    store.close()
    again = JobStore(path)
    assert [r.job for r in again.jobs()] == recorded
    again.close()


def test_a_submit_with_a_full_store_fails_clearly_and_makes_no_pod(
        sim: Any, sim_kubeconfig: str, tmp_path: Path) -> None:
    """The record is written before the pod is created: with no room to write it, the submit
    is refused with the store's reason (the gridmanager holds the job with it) and no pod
    exists that kgahp could not account for after a restart."""
    sim.require_sim()
    service = sim_service(sim_kubeconfig, tmp_path / "state", start=False)
    try:
        _fill(service.store, service.store.path)
        iwd = tmp_path / "iwd"
        iwd.mkdir()
        ad = repr(classad2.ClassAd({
            "Cmd": "/bin/sleep", "Arguments": "600", "Iwd": str(iwd), "JobDirectory": "/spool/full",
            "In": "/dev/null", "RequestMemory": 64, "StageCmd": False,
            "Description": "x" * 5000}))           # more than the free room left in a page
        code, msg, job_id = service.submit(ad)
        assert (code, job_id) == (1, None)
        assert msg.startswith("kgahp cannot write its job store ") and "full" in msg
        pods, _ = service.kube.list_pods("default", service.actions.job_selector(
            names.job_base_name("/spool/full", service.settings.pod.pod_name_prefix)))
        assert pods == []
    finally:
        service.close(secrets_deadline=0)
        service.store.close()
