"""The gridmanager's side of a benchmark: start kgahp, pipeline requests with at most 50 in
flight (GRIDMANAGER_MAX_PENDING_REQUESTS), time each one as the gridmanager sees it."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Optional

import classad2

from kgahp.testing import GahpDriver, condor_env

GM_MAX_PENDING = 50          # GRIDMANAGER_MAX_PENDING_REQUESTS default


@dataclass(frozen=True)
class Timed:
    """One async request: when it was written, when `S` came back, when its result was read."""
    sent: float
    acked: float
    done: float
    result: list[str]

    @property
    def immediate(self) -> float:
        return self.acked - self.sent

    @property
    def latency(self) -> float:
        return self.done - self.sent


# The benchmarks drive kgahp with the test kit's client as it is; the name stays for readers.
BenchDriver = GahpDriver


def start_gahp(knobs: Mapping[str, str], stderr: Optional[IO[bytes]] = None,
               argv: Optional[Sequence[str]] = None,
               env: Optional[Mapping[str, str]] = None) -> BenchDriver:
    """kgahp started as the gridmanager starts it (no argv, pipes), handshake done. `argv`
    replaces `python -m kgahp` for experiments (e.g. another interpreter); `env` adds to the
    environment."""
    driver = BenchDriver(env={**condor_env(knobs), **(env or {})}, stderr=stderr, argv=argv)
    driver.handshake()
    return driver


def job_ad(iwd: str, job_dir: str, image: str, cmd: str = "/bin/true",
           arguments: str = "", namespace: str = "") -> str:
    """A small grid-universe submit ad as the gridmanager sends it (no file transfer)."""
    extra: dict[str, str] = {"Arguments": arguments} if arguments else {}
    if namespace:
        extra["KubernetesNamespace"] = namespace
    return repr(classad2.ClassAd({
        **extra, "Cmd": cmd, "Iwd": iwd, "JobDirectory": job_dir, "In": "/dev/null",
        "Out": f"{job_dir}.out", "Err": f"{job_dir}.err", "GridResource": "batch kubernetes",
        "gridtype": "kubernetes", "RequestMemory": 64, "StageCmd": False,
        "KubernetesImage": image, "Owner": "bench",
    }))


def pipeline(driver: BenchDriver, requests: Sequence[tuple[str, ...]],
             window: int = GM_MAX_PENDING, timeout: float = 300.0) -> list[Timed]:
    """Send every request (command, args...) keeping at most `window` outstanding; read results
    after each `R` notice. Returns one Timed per request, in request order."""
    out: list[Optional[Timed]] = [None] * len(requests)
    pending: dict[int, tuple[int, float, float]] = {}
    next_index = 0
    deadline = time.monotonic() + timeout
    while next_index < len(requests) or pending:
        while next_index < len(requests) and len(pending) < window:
            command, *args = requests[next_index]
            sent = time.monotonic()
            reqid = driver.send(command, *args)
            pending[reqid] = (next_index, sent, time.monotonic())
            next_index += 1
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} requests without a result after {timeout:.0f} s")
        driver.wait_notice(0.5)
        driver.poll_results()
        done = time.monotonic()
        for reqid in [r for r in pending if r in driver.results]:
            index, sent, acked = pending.pop(reqid)
            out[index] = Timed(sent, acked, done, driver.results.pop(reqid))
    return [t for t in out if t is not None]


def status_requests(job_ids: Sequence[str]) -> list[tuple[str, ...]]:
    return [("BLAH_JOB_STATUS", job_id) for job_id in job_ids]


def submit_requests(iwd: str, prefix: str, count: int, image: str,
                    start: int = 0, cmd: str = "/bin/true",
                    arguments: str = "") -> list[tuple[str, ...]]:
    return [("BLAH_JOB_SUBMIT", job_ad(iwd, f"{prefix}_{i}.0", image, cmd, arguments))
            for i in range(start, start + count)]


def failures(results: Sequence[Timed], want_status: Optional[int] = None) -> list[list[str]]:
    """Results with a non-zero code (or, for status, another JobStatus than wanted)."""
    bad = []
    for t in results:
        if t.result[1] != "0" or (want_status is not None and t.result[3] != str(want_status)):
            bad.append(t.result)
    return bad


def gahp_knobs(kubeconfig: str, workdir: str, name: str, **extra: str) -> dict[str, str]:
    """The knobs of one benchmarked kgahp: its own state and log, no file transfer."""
    os.makedirs(os.path.join(workdir, name), exist_ok=True)
    knobs = {
        "KUBECONFIG": kubeconfig,
        "STATE_DIR": os.path.join(workdir, name, "state"),
        "LOG": os.path.join(workdir, name, "KGahpLog"),
        "DEBUG": "WARNING",
        "TRANSFER_MODE": "none",
        "INSTANCE": name,
    }
    knobs.update(extra)
    return knobs
