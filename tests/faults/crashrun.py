"""Crash consistency campaign: many jobs through a real kgahp that is SIGKILLed at random
moments and restarted as the gridmanager restarts it.

The gridmanager model (docs/protocol.md): submits whose result never came are
submitted again with the same ad (same JobDirectory); jobs with a job id are polled; a job is
held after five consecutive failed status calls; a remove is a cancel, re-sent after a restart.
Some kills are aimed between kgahp creating a pod and the gridmanager reading the submit result.

Checked at the end: no job lost, none with a wrong final status, no job with more pods than its
disruptions explain (nor two live at once), nothing with kgahp's labels left in the cluster, and
every reply within the gridmanager's 20 s. Used by test_faults_crash.py (bounded) and long_run.py.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import classad2
from harness import (
    GM_RESPONSE_TIMEOUT,
    MANAGED,
    Gahp,
    PodCensus,
    job_label,
    managed_objects,
)

from kgahp.finalizers import FINALIZER
from kgahp.model import COMPLETED, HELD, REMOVED, RUNNING
from kgahp.podspec.names import job_base_name

log = logging.getLogger(__name__)
GM_HOLD_AFTER_FAILED_STATUS = 5


@dataclass
class Job:
    job_dir: str
    image: str
    expect_exit: Optional[int]        # None: a sleeper the gridmanager removes (cancels)
    disruptions: int = 0              # pods beyond the first that kgahp should make
    proxy: bool = False
    job_id: Optional[str] = None
    submits: int = 0
    final: Optional[str] = None       # "ok", or what went wrong
    cancelled: bool = False
    running_seen: bool = False
    failures: int = 0                 # consecutive failed status calls
    max_failures: int = 0
    last_poll: float = 0.0

    @property
    def label(self) -> str:
        return job_base_name(self.job_dir, "kg")


@dataclass
class CampaignReport:
    jobs: int = 0
    kills: int = 0
    kills_after_create: int = 0
    resubmits: int = 0
    status_calls: int = 0
    status_errors: int = 0
    lost: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    held_by_gm: list[str] = field(default_factory=list)
    leaked_pods: list[str] = field(default_factory=list)
    leaked_secrets: list[str] = field(default_factory=list)
    leaked_finalizers: list[str] = field(default_factory=list)
    leaked_jobs: list[str] = field(default_factory=list)      # job mode's batch/v1 Jobs
    max_reply_seconds: float = 0.0
    seconds: float = 0.0

    def problems(self) -> dict[str, Any]:
        return {k: v for k, v in {
            "lost": self.lost, "wrong": self.wrong, "duplicated": self.duplicated,
            "held_by_gm": self.held_by_gm, "leaked_pods": self.leaked_pods,
            "leaked_secrets": self.leaked_secrets, "leaked_jobs": self.leaked_jobs,
            "leaked_finalizers": self.leaked_finalizers}.items() if v}

    def summary(self) -> str:
        return (f"{self.jobs} jobs, {self.kills} SIGKILLs ({self.kills_after_create} between a "
                f"pod's creation and the submit's answer), {self.resubmits} resubmits, "
                f"{self.status_calls} status calls ({self.status_errors} errors), lost "
                f"{len(self.lost)}, wrong {len(self.wrong)}, duplicated {len(self.duplicated)}, "
                f"leaked {len(self.leaked_pods)} pods/{len(self.leaked_secrets)} secrets/"
                f"{len(self.leaked_jobs)} Jobs, "
                f"{len(self.leaked_finalizers)} finalizers, "
                f"max reply {self.max_reply_seconds:.2f} s, {self.seconds:.0f} s")


def make_jobs(rng: random.Random, count: int, iwd: Path, prefix: str) -> list[Job]:
    """A seeded mix; durations are unique per job so the sim's once-per-spec outcomes (evict)
    happen to each evicting job exactly once."""
    jobs = []
    for i in range(count):
        seconds = f"{3.0 + rng.random() * 3.0:.2f}{i % 10}s"
        roll = rng.random()
        if roll < 0.55:
            job = Job(f"{prefix}_{i}.0", f"sim.invalid/ok:{seconds}", 0)
        elif roll < 0.78:
            code = rng.randint(1, 9)
            job = Job(f"{prefix}_{i}.0", f"sim.invalid/exit{code}:{seconds}", code)
        elif roll < 0.9:
            job = Job(f"{prefix}_{i}.0", f"sim.invalid/evict:1.{i:04d}s", 0, disruptions=1)
        else:
            job = Job(f"{prefix}_{i}.0", "sim.invalid/sleep", None)
        job.proxy = rng.random() < 0.3
        jobs.append(job)
    for job in jobs:
        if job.proxy:
            (iwd / f"{job.job_dir}.proxy").write_text(f"proxy of {job.job_dir}\n")
    return jobs


class Gridmanager:
    """Just enough of the gridmanager's job state machine to drive kgahp through crashes."""

    def __init__(self, gahp: Gahp, jobs: list[Job], rng: random.Random,
                 report: CampaignReport, poll_interval: float = 1.0) -> None:
        self.gahp = gahp
        self.jobs = jobs
        self.rng = rng
        self.report = report
        self.poll_interval = poll_interval
        self.inflight: dict[int, tuple[str, Job]] = {}   # reqid -> (command, job)
        self.unsubmitted = list(jobs)

    # ---- sending
    def _send(self, command: str, job: Job, *args: str) -> None:
        reqid = self.gahp.driver.send(command, *args)
        self.inflight[reqid] = (command, job)

    def submit(self, job: Job) -> None:
        attrs: dict[str, object] = {"KubernetesImage": job.image}
        if job.proxy:
            attrs["x509userproxy"] = str(self.gahp.iwd / f"{job.job_dir}.proxy")
        job.submits += 1
        self._send("BLAH_JOB_SUBMIT", job, self.gahp.ad(job.job_dir, **attrs))

    def submit_wave(self, size: int) -> list[Job]:
        wave, self.unsubmitted = self.unsubmitted[:size], self.unsubmitted[size:]
        for job in wave:
            self.submit(job)
        return wave

    def _busy(self, job: Job) -> bool:
        return any(j is job for _, j in self.inflight.values())

    def poll_and_cancel(self) -> None:
        now = time.monotonic()
        for job in self.jobs:
            if job.job_id is None or job.final is not None or self._busy(job):
                continue
            if job.expect_exit is None and job.running_seen:
                self._send("BLAH_JOB_CANCEL", job, job.job_id)
            elif now - job.last_poll >= self.poll_interval:
                job.last_poll = now
                self.report.status_calls += 1
                self._send("BLAH_JOB_STATUS", job, job.job_id)

    # ---- receiving
    def collect(self) -> None:
        driver = self.gahp.driver
        driver.poll_results()
        for reqid in [r for r in driver.results if r in self.inflight]:
            tokens = driver.results.pop(reqid)
            command, job = self.inflight.pop(reqid)
            getattr(self, "_on_" + command.lower())(job, tokens)

    def _on_blah_job_submit(self, job: Job, tokens: list[str]) -> None:
        if tokens[1] != "0":
            job.final = f"submit failed (the gridmanager holds the job): {tokens[2]}"
        elif job.job_id is not None and job.job_id != tokens[3]:
            job.final = f"resubmit returned another job id {tokens[3]} (was {job.job_id})"
        else:
            job.job_id = tokens[3]

    def _on_blah_job_status(self, job: Job, tokens: list[str]) -> None:
        if tokens[1] != "0":
            self.report.status_errors += 1
            job.failures += 1
            job.max_failures = max(job.max_failures, job.failures)
            if job.failures >= GM_HOLD_AFTER_FAILED_STATUS:
                job.final = f"held by the gridmanager after {job.failures} failed status calls"
            return
        job.failures = 0
        status, ad = int(tokens[3]), classad2.parseOne(tokens[4])
        if status == RUNNING:
            job.running_seen = True
        if status == COMPLETED:
            exit_code = ad.eval("ExitCode")
            restarts = ad.eval("NumRestarts") if "NumRestarts" in ad else 0
            if job.expect_exit is None:
                job.final = "a sleeper reported COMPLETED"
            elif exit_code != job.expect_exit or ad.eval("ExitBySignal") is not False:
                job.final = f"COMPLETED with exit {exit_code}, expected {job.expect_exit}"
            elif restarts != job.disruptions:
                job.final = f"NumRestarts {restarts}, expected {job.disruptions}"
            else:
                job.final = "ok"
        elif status in (HELD, REMOVED):
            reason = ad.eval("HoldReason") if "HoldReason" in ad else ""
            job.final = f"status {status} {reason}"

    def _on_blah_job_cancel(self, job: Job, tokens: list[str]) -> None:
        if tokens[1] == "0":
            job.cancelled = True
            job.final = "ok"

    # ---- crashing
    def crash_and_restart(self) -> None:
        """SIGKILL kgahp and start a new one; then do what the gridmanager does on restart."""
        self.gahp.driver.kill()
        self.report.max_reply_seconds = max(self.report.max_reply_seconds,
                                            self.gahp.driver.max_reply_seconds)
        self.report.kills += 1
        lost = list(self.inflight.values())
        self.inflight.clear()
        self.gahp.start()
        code, msg = self.gahp.driver.ping()
        assert code == 0, f"ping after restart: {msg}"
        for command, job in lost:
            if command == "BLAH_JOB_SUBMIT" and job.job_id is None:
                self.report.resubmits += 1
                self.submit(job)          # the sandbox id was saved, the job id was not
            # a lost status or cancel is simply sent again at the next poll


def managed_jobs(sim: Any) -> list[dict]:
    """Every batch/v1 Job carrying kgahp's managed-by label (job mode)."""
    from kubernetes import client

    batch = client.BatchV1Api(sim.api_client())
    return [batch.api_client.sanitize_for_serialization(j)
            for j in batch.list_job_for_all_namespaces(label_selector=MANAGED).items]


def _pods_exist(gahp: Gahp, jobs: list[Job]) -> bool:
    labels = {job_label(p) for p in managed_objects(gahp.sim, "pods")}
    return all(job.label in labels for job in jobs)


def run_campaign(gahp: Gahp, *, jobs: int, kills: int, seed: int, wave: int = 6,
                 wave_interval: float = 0.5, timeout: float = 600.0,
                 slow_creates: float = 0.3) -> CampaignReport:
    """`slow_creates`: the share of pod creates the API server takes 0.8 s over, so kills
    often land while a create is on its way (it still completes, as on a real server)."""
    rng = random.Random(seed)
    if slow_creates:   # job mode: kgahp creates Jobs (their pods come from the controller)
        gahp.sim.faults.add(method="POST", path="/(pods|jobs)$", latency=0.8,
                            probability=slow_creates)
    report = CampaignReport(jobs=jobs)
    started = time.monotonic()
    all_jobs = make_jobs(rng, jobs, gahp.iwd, f"crash{seed}")
    gm = Gridmanager(gahp, all_jobs, rng, report)
    census = PodCensus(gahp.sim)
    waves = -(-jobs // wave)
    submit_span = waves * wave_interval
    # kills spread over the submitting phase and a little beyond it, each after some working
    # time (a restart takes a while; kills must not follow each other back to back)
    mean_gap = submit_span / kills
    kills_left = kills
    next_kill = started + rng.uniform(0.5, 1.0 + mean_gap)
    next_wave = started
    try:
        while kills_left or any(job.final is None for job in all_jobs):
            now = time.monotonic()
            if now - started > timeout:
                break
            if gm.unsubmitted and now >= next_wave:
                gm.submit_wave(wave)
                next_wave = now + wave_interval
            if kills_left and now >= next_kill:
                kills_left -= 1
                if gm.unsubmitted and rng.random() < 0.5:
                    # aimed: the pods exist, the gridmanager has not read the submit results
                    batch = gm.submit_wave(wave)
                    deadline = time.monotonic() + 15
                    while not _pods_exist(gahp, batch) and time.monotonic() < deadline:
                        time.sleep(0.02)
                    report.kills_after_create += 1
                else:
                    time.sleep(rng.uniform(0.0, 0.3))   # anywhere in the work
                gm.crash_and_restart()
                next_kill = time.monotonic() + rng.uniform(0.2, mean_gap)
                continue
            gm.poll_and_cancel()
            gm.collect()
            time.sleep(0.1)
    finally:
        census.stop()
        gahp.sim.faults.clear()
        report.max_reply_seconds = max(report.max_reply_seconds, gahp.driver.max_reply_seconds)

    for job in all_jobs:
        if job.final is None:
            report.lost.append(f"{job.job_dir} ({job.image}): no final status")
        elif job.final != "ok":
            report.wrong.append(f"{job.job_dir} ({job.image}): {job.final}")
        if job.max_failures >= GM_HOLD_AFTER_FAILED_STATUS:
            report.held_by_gm.append(job.job_dir)
        names = census.names_by_job.get(job.label, set())
        if len(names) > 1 + job.disruptions or census.max_active.get(job.label, 0) > 1:
            report.duplicated.append(f"{job.job_dir} ({job.image}): pods {sorted(names)}, "
                                     f"at most {census.max_active.get(job.label)} live at once")

    # the end of the campaign: finished pods go after POD_RETENTION, sleepers were cancelled
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        pods = managed_objects(gahp.sim, "pods")
        secrets = managed_objects(gahp.sim, "secrets")
        jobs_left = managed_jobs(gahp.sim)
        if not pods and not secrets and not jobs_left:
            break
        time.sleep(0.5)
    report.leaked_jobs = [j["metadata"]["name"] for j in jobs_left]
    report.leaked_pods = [p["metadata"]["name"] for p in pods]
    report.leaked_secrets = [s["metadata"]["name"] for s in secrets]
    # a pod still carrying kgahp's finalizer at the end would be stuck forever once deleted
    report.leaked_finalizers = [p["metadata"]["name"] for p in pods
                                if FINALIZER in (p["metadata"].get("finalizers") or ())]
    report.seconds = time.monotonic() - started
    assert report.max_reply_seconds < GM_RESPONSE_TIMEOUT
    return report
