"""The durable job store: what kgahp must remember when the cluster alone cannot tell.

Live state comes from the cluster (pod labels and annotations). Three things do not survive
there, so they live in a small SQLite file in KGAHP_STATE_DIR (default ~/.kgahp; never GAHP_TEMP,
which the gridmanager deletes):
- the submit ad of every job, so a pod lost to a disruption can be created again;
- the final result of a finished job, so it stays answerable after the pod is deleted and after
  a GAHP restart (the gridmanager may ask again), for KGAHP_RESULT_RETENTION seconds;
- whether kgahp itself cancelled a job (a pod kgahp deleted is not a disruption).

SQLite gives atomic, crash-safe writes with no extra dependency. The whole table is mirrored in
memory so the status path never touches the disk. The file is 0600 in a 0700 directory: submit
ads can carry environment values the job owner considers private.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Optional

from kgahp.codes import JobStatus
from kgahp.errors import StoreError
from kgahp.model import JobState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    ad TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    restarts INTEGER NOT NULL DEFAULT 0,
    started INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    final TEXT,
    finished_at REAL,
    reported INTEGER NOT NULL DEFAULT 0
)
"""
# Stores made before `reported` existed: count their results as seen (the old behaviour).
_ADD_REPORTED = "ALTER TABLE jobs ADD COLUMN reported INTEGER NOT NULL DEFAULT 1"
_COLUMNS = ("job", "namespace", "attempt", "ad", "submitted_at", "restarts", "started",
            "cancelled", "final", "finished_at", "reported")
_INSERT = (f"INSERT INTO jobs ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in _COLUMNS)})")
# A changed record is updated in place: half the cost of INSERT OR REPLACE, which deletes the
# row and inserts it again (a job's record changes a few times in its life: started, final,
# reported). Upsert needs SQLite 3.24 (2018); older libraries keep REPLACE.
_UPSERT = (_INSERT + " ON CONFLICT(job) DO UPDATE SET "
           + ", ".join(f"{c}=excluded.{c}" for c in _COLUMNS[1:])
           if sqlite3.sqlite_version_info >= (3, 24, 0)
           else _INSERT.replace("INSERT", "INSERT OR REPLACE", 1))


@dataclass
class JobRecord:
    job: str                 # the job's base name (the last part of its job id)
    namespace: str
    attempt: int             # the newest attempt kgahp created
    ad: str                  # the submit ad text
    submitted_at: float
    restarts: int = 0        # disruptions survived
    started: bool = False    # the newest attempt was seen running
    cancelled: bool = False  # kgahp deleted it on a BLAH_JOB_CANCEL
    final: Optional[JobState] = None
    finished_at: Optional[float] = None
    # `final` went out in a status reply: the gridmanager knows the job id and its result, so
    # a later submit of the same JobDirectory is a hold/release rerun, not a lost submit answer.
    reported: bool = False


def _state_to_json(state: Optional[JobState]) -> Optional[str]:
    return None if state is None else json.dumps(dataclasses.asdict(state))


def _state_from_json(text: Optional[str]) -> Optional[JobState]:
    if not text:
        return None
    data = json.loads(text)
    known = {f.name for f in dataclasses.fields(JobState)}
    return JobState(**{k: v for k, v in data.items() if k in known})


# The in-memory mirror keeps each record as a flat tuple of its fields (the final state as a
# tuple of its own): a tuple holding only strings, numbers and None is untracked by Python's
# cyclic garbage collector, a dataclass instance never is. At 100,000 jobs the records and their
# results were the bulk of what every full collection walked (0.3-0.9 s pauses, in which no
# status is answered). A record is built afresh from its row on every read, so no caller can
# change the mirror by changing what it was given.
_Row = tuple[Any, ...]
_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(JobState))
_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(JobRecord))
_ATTEMPT = _RECORD_FIELDS.index("attempt")
_FINAL = _RECORD_FIELDS.index("final")
_FINISHED_AT = _RECORD_FIELDS.index("finished_at")
_state_values = operator.attrgetter(*_STATE_FIELDS)
_record_values = operator.attrgetter(*_RECORD_FIELDS)


def _row(rec: JobRecord) -> _Row:
    values = _record_values(rec)
    final = values[_FINAL]
    if final is None:
        return values
    # enum members (JobStatus, HoldCode) are objects the collector tracks: kept as their ints
    state = tuple(int(v) if isinstance(v, IntEnum) else v for v in _state_values(final))
    return (*values[:_FINAL], state, *values[_FINAL + 1:])


def _record(row: _Row) -> JobRecord:
    final = row[_FINAL]
    if final is None:
        return JobRecord(*row)
    state = JobState(JobStatus(final[0]), *final[1:])
    return JobRecord(*row[:_FINAL], state, *row[_FINAL + 1:])  # type: ignore[call-arg]


class JobStore:
    def __init__(self, path: str) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if "reported" not in columns:
            self._db.execute(_ADD_REPORTED)
        self._lock = threading.Lock()
        self._jobs: dict[str, _Row] = {}
        for row in self._db.execute(
                "SELECT job, namespace, attempt, ad, submitted_at, restarts, started, "
                "cancelled, final, finished_at, reported FROM jobs"):
            self._jobs[row[0]] = _row(JobRecord(
                job=row[0], namespace=row[1], attempt=row[2], ad=row[3], submitted_at=row[4],
                restarts=row[5], started=bool(row[6]), cancelled=bool(row[7]),
                final=_state_from_json(row[8]), finished_at=row[9], reported=bool(row[10])))

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, job: str) -> Optional[JobRecord]:
        row = self._jobs.get(job)
        return _record(row) if row else None

    def _execute(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run a write; SQLite's failure becomes a StoreError an admin can act on (the mirror
        is only changed after the write went through)."""
        try:
            self._db.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise StoreError(
                f"kgahp cannot write its job store {self.path}: {exc}; free space there or "
                "point KGAHP_STATE_DIR at a writable directory") from exc

    def _write(self, rec: JobRecord) -> None:
        self._execute(_UPSERT, [
            (rec.job, rec.namespace, rec.attempt, rec.ad, rec.submitted_at, rec.restarts,
             int(rec.started), int(rec.cancelled), _state_to_json(rec.final), rec.finished_at,
             int(rec.reported))])
        self._jobs[rec.job] = _row(rec)

    def record_submit(self, job: str, namespace: str, attempt: int, ad: str,
                      restarts: int = 0) -> JobRecord:
        """A new attempt is about to be created: forget any earlier attempt's result."""
        with self._lock:
            rec = JobRecord(job=job, namespace=namespace, attempt=attempt, ad=ad,
                            submitted_at=time.time(), restarts=restarts)
            self._write(rec)
            return _record(self._jobs[job])

    def import_record(self, rec: JobRecord) -> bool:
        """Take over a record from another store (an older kgahp's), unless the job is known."""
        with self._lock:
            if rec.job in self._jobs:
                return False
            self._write(rec)
            return True

    def update(self, job: str, **changes: object) -> Optional[JobRecord]:
        """Change fields of an existing record (no-op when the job is unknown)."""
        with self._lock:
            row = self._jobs.get(job)
            if row is None:
                return None
            rec = _record(row)
            new = dataclasses.replace(rec, **changes)  # type: ignore[arg-type]
            if new != rec:
                self._write(new)
            return new

    def record_final(self, job: str, attempt: int, state: JobState) -> bool:
        """Record the one final answer of `attempt`; True when this call recorded it.

        The first final recorded is the answer: the gridmanager acts on the first one it reads,
        so a later writer (a collect that lost the race with a DELETED event, or the reverse)
        changes nothing. Only a new attempt (record_submit) clears it.
        """
        with self._lock:
            row = self._jobs.get(job)
            if row is None or row[_ATTEMPT] != attempt:
                return False   # a newer attempt superseded this one
            if row[_FINAL] is not None:
                return False   # already answered
            self._write(dataclasses.replace(_record(row), final=state, finished_at=time.time()))
            return True

    def purge(self, older_than: float) -> int:
        """Forget finished jobs whose result is older than `older_than` (epoch seconds)."""
        with self._lock:
            old = [j for j, r in self._jobs.items()
                   if r[_FINISHED_AT] is not None and r[_FINISHED_AT] < older_than]
            self._execute("DELETE FROM jobs WHERE job = ?", [(j,) for j in old])
            for job in old:
                del self._jobs[job]
            return len(old)

    def jobs(self) -> list[JobRecord]:
        with self._lock:
            return [_record(r) for r in self._jobs.values()]

    def close(self) -> None:
        with self._lock:
            self._db.close()
