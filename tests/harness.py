"""The pieces the fault, crash and hostile-input tests share: a real kgahp process driven through
the GAHP protocol as the gridmanager drives it, the simulated cluster it talks to, and the
observers that check the cluster side (pods, secrets, how often a faulted request came back).

Shared by tests/e2e and tests/faults (pytest puts tests/ on sys.path through tests/conftest.py);
the long run (tests/faults/long_run.py) imports it too, which is why nothing here depends on
pytest fixtures.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import shlex
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import classad2

from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, RUNNING
from kgahp.podspec.names import LABEL_INSTANCE
from kgahp.testing import GahpDriver, condor_env
from kgahp_sim import SimCluster, SimConfig

T = TypeVar("T")
MANAGED = "app.kubernetes.io/managed-by=kgahp"
GM_RESPONSE_TIMEOUT = 20.0
TERMINAL = (COMPLETED, HELD, REMOVED)
STATUS_NAMES = {IDLE: "IDLE", RUNNING: "RUNNING", REMOVED: "REMOVED", COMPLETED: "COMPLETED",
                HELD: "HELD", 0: "ERROR"}


# The image the e2e jobs run in. Outcomes are ordered with real commands in it (`sh -c 'exit 3'`),
# so the same tests run on the simulator (which runs them as local processes) and on any cluster
# named by KGAHP_TEST_KUBECONFIG. It needs a POSIX sh, sleep and kill (busybox has them).
TEST_IMAGE = os.environ.get("KGAHP_TEST_IMAGE", "busybox:1.36")
# Per test run: on a real cluster, pods and instances of one run never meet another run's.
RUN = secrets.token_hex(3)
_GAHP_NUMBERS = itertools.count()


def sh(script: str, **attrs: object) -> dict[str, object]:
    """Job ad attributes that run `sh -c script` in the test image (what a real cluster runs)."""
    return {"Cmd": "/bin/sh", "Arguments": "-c " + shlex.quote(script),
            "KubernetesImage": TEST_IMAGE, **attrs}


def exits(code: int, after: float = 0) -> dict[str, object]:
    """A job that exits with `code`, after `after` seconds."""
    return sh(f"sleep {after:g}; exit {code}" if after else f"exit {code}")


def succeeds(after: float = 0) -> dict[str, object]:
    return sh(f"sleep {after:g}; echo hi" if after else "echo hi")


def sleeps(seconds: int = 600) -> dict[str, object]:
    """A job that runs until cancelled (or its deadline)."""
    return sh(f"sleep {seconds}")


def killed_by(signal_name: str = "TERM") -> dict[str, object]:
    """A job whose process dies by a signal. Not `kill $$`: in a container the shell is PID 1,
    which the kernel protects from signals it has no handler for. A child killed by the signal
    makes the container exit 128+n, which is all a kubelet reports of a signal death."""
    return sh(f"sleep 600 & kill -{signal_name} $!; wait $!")


def allocates_past_limit(request_memory_mb: int) -> dict[str, object]:
    """A job that doubles a shell string until the memory limit stops it (OOM kill)."""
    return sh("x=a; while :; do x=$x$x; done", RequestMemory=request_memory_mb)


def fuzz_examples(ci: int) -> int:
    """Hypothesis examples: CI's count, times KGAHP_FUZZ_SCALE for the long run."""
    return ci * max(1, int(os.environ.get("KGAHP_FUZZ_SCALE", "1")))


def start_sim(workdir: str, *, seed: int = 0) -> SimCluster:
    """A fast simulated cluster (as tests/conftest.py's `sim`), with seeded fault dice."""
    config = SimConfig(workdir=workdir, schedule_delay=0.01, start_delay=0.05,
                       bookmark_interval=1.0, nodes=4)
    cluster = SimCluster(config, future_rv_wait=0.3)
    cluster.faults._rng.seed(seed)   # probability rules: the same dice every run
    return cluster.start()


def sim_service(kubeconfig: str, state_dir: Path, *, start: bool) -> Any:
    """kgahp's Service in this process on the simulated cluster, as the reconcile tests use it:
    no file transfer, no rate limit, its store in `state_dir`; `start`: its watches too."""
    from kgahp.app import build_service
    from kgahp.config import settings_from_mapping

    settings = settings_from_mapping({
        "KUBECONFIG": kubeconfig, "STATE_DIR": str(state_dir), "TRANSFER_MODE": "none",
        "QPS": "0", "DEFAULT_IMAGE": "busybox:1.36"}, user="tester")
    return build_service(settings, start=start)


class Gahp:
    """A kgahp process plus the job-level conveniences of a gridmanager."""

    def __init__(self, sim: Any, tmp: Path, knobs: dict[str, str]) -> None:
        self.sim = sim
        self.real = not getattr(sim, "is_sim", True)
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.iwd = tmp / "iwd"
        self.iwd.mkdir(exist_ok=True)
        self.log = tmp / "KGahpLog"
        self.stderr_path = tmp / "stderr"
        self.state = tmp / "state"
        self.knobs = {
            "KUBECONFIG": sim.write_kubeconfig(str(tmp / "kubeconfig")),
            "STATE_DIR": str(self.state),
            "LOG": str(self.log),
            "DEBUG": "DEBUG",
            "DEFAULT_IMAGE": TEST_IMAGE,
            "TRANSFER_MODE": "none",
            "IMAGE_PULL_GRACE": "1",
            "CONFIG_ERROR_GRACE": "1",
            "POD_RETENTION": "600",
            **knobs,
        }
        if self.real:
            # A shared cluster keeps other runs' pods (POD_RETENTION) and names are derived from
            # the job directory: a per-GAHP prefix and instance keep this test's pods its own.
            token = f"{RUN}{next(_GAHP_NUMBERS)}"
            self.knobs["POD_NAME_PREFIX"] = f"kg-{token}"
            self.knobs["INSTANCE"] = f"{self.knobs.get('INSTANCE') or 'kgtest'}-{token}"
        self.starts = 0
        self.driver = self.start()

    def start(self) -> GahpDriver:
        # knobs spelled _CONDOR_<NAME> are other HTCondor settings (e.g. the SCHEDD_NAME a GAHP
        # serves), passed as they are
        env = condor_env({k: v for k, v in self.knobs.items() if not k.startswith("_CONDOR_")})
        env.update({k: v for k, v in self.knobs.items() if k.startswith("_CONDOR_")})
        with open(self.stderr_path, "ab") as err:
            driver = GahpDriver(env=env, stderr=err)
        driver.handshake()
        self.driver = driver
        self.starts += 1
        return driver

    def restart(self, kill: bool = True) -> GahpDriver:
        if kill:
            self.driver.kill()
        else:
            self.driver.close()
        return self.start()

    def ad(self, job_dir: str, **attrs: object) -> str:
        base: dict[str, object] = {
            "Cmd": "/bin/true", "Iwd": str(self.iwd), "JobDirectory": job_dir,
            "In": "/dev/null", "Out": f"{job_dir}.out", "Err": f"{job_dir}.err",
            "GridResource": "batch kubernetes", "gridtype": "kubernetes",
            "RequestMemory": 64, "StageCmd": False,
        }
        base.update(attrs)
        return repr(classad2.ClassAd(base))

    def submit(self, job_dir: str, **attrs: object) -> str:
        code, msg, job_id = self.driver.submit(self.ad(job_dir, **attrs))
        assert code == 0, msg
        return job_id

    def answer_recorded(self, job_id: str) -> bool:
        """The GAHP's store says a status answer gave the job's final result. Until it does, a
        restarted GAHP cannot know the answer went out: it shows a finished job's start once
        more, as it would for a job that ended between two polls."""
        job = job_id.split("/")[-1]
        for path in self.state.glob("jobs-*.sqlite"):
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                row = db.execute("SELECT reported FROM jobs WHERE job = ?", (job,)).fetchone()
            finally:
                db.close()
            if row is not None:
                return bool(row[0])
        return False

    def status(self, job_id: str) -> tuple[int, classad2.ClassAd]:
        code, msg, status, ad_text = self.driver.status(job_id)
        assert code == 0, msg
        return status, classad2.parseOne(ad_text)

    def wait_status(self, job_id: str, want: Callable[[int], bool] | set[int],
                    timeout: float = 60.0) -> tuple[int, classad2.ClassAd]:
        test = want if callable(want) else (lambda s: s in want)
        deadline = time.monotonic() + timeout
        seen: list[int] = []
        while True:
            status, ad = self.status(job_id)
            seen.append(status)
            if test(status):
                return status, ad
            if time.monotonic() > deadline:
                raise AssertionError(f"{job_id}: statuses seen {seen[-20:]}, last ad {ad}")
            time.sleep(0.2)

    def poll(self, job_id: str, interval: float, timeout: float = 60.0
             ) -> list[tuple[int, classad2.ClassAd]]:
        """Status every `interval` seconds until a final answer, as the gridmanager polls
        (GRIDMANAGER_JOB_PROBE_INTERVAL): every answer it would have seen, in order."""
        deadline = time.monotonic() + timeout
        seen: list[tuple[int, classad2.ClassAd]] = []
        while True:
            seen.append(self.status(job_id))
            if seen[-1][0] in TERMINAL:
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"{job_id}: no final answer in {timeout:.0f} s, seen "
                                     f"{[STATUS_NAMES.get(s, s) for s, _ in seen[-20:]]}")
            time.sleep(interval)

    def pods(self, namespace: Optional[str] = None) -> list[dict]:
        """This GAHP's pods (on the simulator, every kgahp pod: the cluster is the test's own)."""
        pods = managed_objects(self.sim, "pods", namespace)
        if self.real:
            pods = [p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get(
                LABEL_INSTANCE) == self.knobs["INSTANCE"]]
        return pods

    def node_of(self, job_id: str) -> str:
        """The node the job's pod was bound to (what WorkerNode should say)."""
        base = job_id.split("/")[-1]
        nodes = {(p.get("spec") or {}).get("nodeName") for p in self.pods()
                 if p["metadata"]["name"].startswith(base + "-")}
        assert len(nodes) == 1, nodes
        return str(nodes.pop())

    def clean_up(self) -> None:
        """On a real cluster: delete what this GAHP made (the simulator just stops)."""
        if not self.real:
            return
        from kubernetes import client

        core = client.CoreV1Api(self.sim.api_client())
        selector = f"{MANAGED},{LABEL_INSTANCE}={self.knobs['INSTANCE']}"
        for pod in core.list_pod_for_all_namespaces(label_selector=selector).items:
            with contextlib.suppress(Exception):
                core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace,
                                           grace_period_seconds=0)
        for secret in core.list_secret_for_all_namespaces(label_selector=selector).items:
            with contextlib.suppress(Exception):
                core.delete_namespaced_secret(secret.metadata.name, secret.metadata.namespace)

    def close(self) -> None:
        if self.driver.proc.poll() is None:
            self.driver.close()


@contextlib.contextmanager
def gahp_factory(sim: Any, tmp: Path) -> Iterator[Callable[..., Gahp]]:
    """`make(**knobs) -> Gahp`: real kgahp processes on `sim`, all closed (or killed) at exit."""
    made: list[Gahp] = []

    def make(**knobs: object) -> Gahp:
        g = Gahp(sim, tmp / f"g{len(made)}", {k: str(v) for k, v in knobs.items()})
        made.append(g)
        return g

    try:
        yield make
    finally:
        for g in made:
            try:
                g.close()
            except AssertionError:   # a test that killed it on purpose
                g.driver.kill()
            g.clean_up()


def managed_objects(sim: Any, kind: str, namespace: Optional[str] = None) -> list[dict]:
    """Every pod or secret carrying kgahp's managed-by label (all namespaces by default)."""
    from kubernetes import client

    core = client.CoreV1Api(sim.api_client())
    api = core.api_client
    items: list[Any]
    if kind == "pods":
        items = (core.list_namespaced_pod(namespace, label_selector=MANAGED).items if namespace
                 else core.list_pod_for_all_namespaces(label_selector=MANAGED).items)
    else:
        items = (core.list_namespaced_secret(namespace, label_selector=MANAGED).items
                 if namespace
                 else core.list_secret_for_all_namespaces(label_selector=MANAGED).items)
    return [api.sanitize_for_serialization(o) for o in items]


def all_pods(sim: Any) -> list[dict]:
    """Every pod in the cluster, whoever made it (policy checks look at all of them)."""
    from kubernetes import client

    core = client.CoreV1Api(sim.api_client())
    return [core.api_client.sanitize_for_serialization(p)
            for p in core.list_pod_for_all_namespaces().items]


def wait_until(predicate: Callable[[], T], timeout: float = 20.0, what: str = "the condition",
               interval: float = 0.2) -> T:
    """Poll `predicate` until it gives a true value, and return that value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return value


def job_label(pod: dict) -> str:
    return str(((pod.get("metadata") or {}).get("labels") or {}).get(
        "kgahp.htcondor.org/job", ""))


# ---- raw protocol access (for the fuzzers): one request line in, one reply line out

def raw_request(driver: GahpDriver, line: bytes) -> list[str]:
    """Send bytes as one request line (CR LF added) and return the immediate reply's tokens."""
    return driver.raw_request(line)


def drain_results(driver: GahpDriver) -> list[list[str]]:
    """RESULTS without the driver's bookkeeping: every line, checked only for its reqid."""
    return driver.drain_results()


# ---- observers

class RuleClock:
    """Timestamps each time a fault rule with a `times` budget fires, by watching the budget
    shrink (the sim consumes one per matching request). No hook into the sim needed."""

    def __init__(self, rule: Any, interval: float = 0.005) -> None:
        self.rule = rule
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        last = self.rule.times
        while not self._stop.is_set():
            now = self.rule.times
            if now != last:
                stamp = time.monotonic()
                self.times.extend([stamp] * (last - now))
                last = now
            time.sleep(interval)

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join(5)
        return self.times


class PodCensus:
    """Polls the cluster in the background and remembers every kgahp pod ever seen, and the
    most pods of one job that were active (not finished, not being deleted) at one moment."""

    def __init__(self, sim: Any, interval: float = 0.25) -> None:
        self.sim = sim
        self.names_by_job: dict[str, set[str]] = {}
        self.max_active: dict[str, int] = {}
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                self.observe(managed_objects(self.sim, "pods"))
            except Exception:   # the sim may be faulted on purpose; try again next time
                pass
            self._stop.wait(interval)

    def observe(self, pods: Iterable[dict]) -> None:
        active: dict[str, int] = {}
        for pod in pods:
            job = job_label(pod)
            self.names_by_job.setdefault(job, set()).add(pod["metadata"]["name"])
            phase = (pod.get("status") or {}).get("phase")
            if phase not in ("Succeeded", "Failed") and not pod["metadata"].get(
                    "deletionTimestamp"):
                active[job] = active.get(job, 0) + 1
        for job, n in active.items():
            self.max_active[job] = max(self.max_active.get(job, 0), n)
        self.polls += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


SECRETISH = re.compile(rb"-----BEGIN|MARKER-[0-9a-f]{8}")


def files_under(*roots: Path) -> list[Path]:
    out: list[Path] = []
    for root in roots:
        if root.is_file():
            out.append(root)
        elif root.is_dir():
            out.extend(p for p in root.rglob("*") if p.is_file())
    return out


def world_readable(path: Path, root: Path) -> bool:
    """Readable by others: the file's own bit, and every directory kgahp may have made between
    `root` (the test's scratch directory, private by construction) and the file searchable."""
    if not os.stat(path).st_mode & 0o004:
        return False
    return all(os.stat(parent).st_mode & 0o001 for parent in path.parents
               if root in parent.parents)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for a simulated API server on https://127.0.0.1 (CN kubernetes)."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=kubernetes", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key
