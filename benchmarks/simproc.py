"""The simulated cluster in its own process, so its CPU never competes with the benchmark's
client for one GIL, and a Pipe to ask it for request counts and pod phases."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Optional

# One child command per name; each runs on the sim's loop thread and returns plain data.
SIM_NODES = 100            # the sim allows 110 pods per node: room for 11,000 pods
SIM_NODE_CPU = "1000"
SIM_NODE_MEMORY = "4Ti"


def _phases(cluster: Any, namespace: str, label: str) -> dict[str, int]:
    """Pods in namespace carrying `label` (key=value), counted by phase."""
    key, _, value = label.partition("=")

    def count() -> dict[str, int]:
        out: Counter[str] = Counter()
        for pod in cluster.store.scan("pods", namespace):
            meta = pod.get("metadata") or {}
            if (meta.get("labels") or {}).get(key) != value:
                continue
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            out["Terminating" if meta.get("deletionTimestamp") else phase] += 1
        return dict(out)

    return cluster.call(count)


SEED_BATCH = 250          # pods created per turn of the sim's loop (its kubelet runs between)


def _create_namespaces(cluster: Any, names: Sequence[str]) -> int:
    def create() -> int:
        made = 0
        for name in names:
            if cluster.store.peek("namespaces", None, name) is None:
                cluster.store.create("namespaces", None, {"metadata": {"name": name}})
                made += 1
        return made

    return int(cluster.call(create))


def _seed(cluster: Any, templates: dict[str, str], markers: tuple[str, str],
          jobs: Sequence[tuple[str, str, str]], nodes: int) -> dict[str, Any]:
    """Create one pod per (namespace, job directory, job name) from its namespace's rendered
    template, the markers replaced by the job's own directory and name: through the API
    server's own create path (mutating and validating admission, defaulting, the store, the
    watch events) minus HTTP, bound to a node as a pod created with spec.nodeName is, so the
    sim's kubelet starts it at once."""
    from kgahp_sim import admission, validation
    from kgahp_sim.nodes import node_name

    marker_dir, marker_name = markers
    t0 = time.monotonic()
    for start in range(0, len(jobs), SEED_BATCH):
        chunk = jobs[start:start + SEED_BATCH]

        def create(chunk: Sequence[tuple[str, str, str]] = chunk, start: int = start) -> None:
            for offset, (namespace, job_dir, job_name) in enumerate(chunk):
                pod = json.loads(templates[namespace].replace(marker_dir, job_dir)
                                 .replace(marker_name, job_name))
                pod["spec"]["nodeName"] = node_name((start + offset) % nodes + 1)
                check = admission.admit_create(cluster.store, "pods", namespace, pod)
                validation.validate_create("pods", pod)
                check()
                cluster.store.create("pods", namespace, pod, copy=False)

        cluster.call(create)
    return {"pods": len(jobs), "seconds": time.monotonic() - t0}


def _succeeded(pod: dict) -> None:
    """What the kubelet writes when the pod's only container exits 0 (restartPolicy Never)."""
    from kgahp_sim.kubelet import terminated_state

    status = pod.setdefault("status", {})
    status["phase"] = "Succeeded"
    for cs in status.get("containerStatuses") or []:
        started = ((cs.get("state") or {}).get("running") or {}).get("startedAt") or ""
        cs["state"] = terminated_state(0, started, container_id=cs.get("containerID"))
        cs["ready"] = False
        cs["started"] = False
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("Ready", "ContainersReady"):
            cond.update({"status": "False", "reason": "PodCompleted"})
            cond.pop("message", None)


class _Finisher:
    """Ends the given pods' containers (exit 0) evenly spread over `window` seconds, from a
    thread of the sim's process, each status write made on the sim's loop as the kubelet's."""

    def __init__(self, cluster: Any, pods: Sequence[tuple[str, str]], window: float) -> None:
        self.cluster, self.pods, self.window = cluster, list(pods), window
        self.done = 0
        self.first = self.last = 0.0
        self.thread = threading.Thread(target=self._run, name="bench-finisher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        self.first = t0
        total = len(self.pods)
        while self.done < total:
            due = min(total, int(total * (time.monotonic() - t0) / self.window) + 1)
            batch = self.pods[self.done:due]

            def write(batch: Sequence[tuple[str, str]] = batch) -> None:
                for namespace, name in batch:
                    try:
                        self.cluster.store.update("pods", namespace, name, _succeeded,
                                                  copy=False)
                    except Exception:   # deleted meanwhile: nothing to end
                        pass

            if batch:
                self.cluster.call(write)
                self.done = due
                self.last = time.monotonic()
            time.sleep(0.02)

    def progress(self) -> dict[str, Any]:
        return {"done": self.done, "total": len(self.pods), "first": self.first,
                "last": self.last}


def _freeze_long_lived() -> None:
    """Keep what survives a full garbage collection out of the next ones' sight.

    Python walks every object it tracks, with the event loop stopped, each time the oldest
    generation has grown by a quarter. As the store filled with pods, the simulator's CPU per
    created pod doubled from 1,000 to 5,000 pods held (1.1 -> 2.3 ms; 0.8-1.2 ms throughout
    with the collector off), and the pauses landed in whatever request it was serving, where a
    kube-apiserver collects beside its requests. What survives is the store's plain JSON and
    the controllers' state, freed by reference counting when it goes (a deleted pod leaves no
    reference cycle behind: tests/sim/test_nodes_scripted.py), so frozen it costs nothing.
    Measured with a bare client creating 1,000 pods at a time, up to 6,000 held: 1.0-1.6 ms
    per pod, and no more memory kept after pods are deleted than with the collector as it was."""
    import gc

    due = threading.Event()

    def after(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            due.set()

    def freezer() -> None:
        while True:
            due.wait()
            due.clear()
            gc.freeze()

    gc.callbacks.append(after)
    threading.Thread(target=freezer, name="gc-freeze", daemon=True).start()


def _certificate(workdir: str) -> tuple[str, str]:
    """A self-signed certificate and key for https://127.0.0.1, made with the openssl command
    (no Python dependency for it)."""
    import os
    import subprocess

    os.makedirs(workdir, exist_ok=True)
    cert, key = os.path.join(workdir, "tls.crt"), os.path.join(workdir, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=kubernetes", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def _child(conn: multiprocessing.connection.Connection, workdir: str,
           nodes: int = SIM_NODES, tls: bool = False) -> None:
    import base64
    import logging
    import ssl

    from kgahp_sim import SimCluster, SimConfig

    logging.basicConfig(level=logging.WARNING)
    _freeze_long_lived()
    config = SimConfig(nodes=nodes, cpu=SIM_NODE_CPU, memory=SIM_NODE_MEMORY,
                       workdir=workdir, run_processes=False)
    finisher: Optional[_Finisher] = None
    context: Optional[ssl.SSLContext] = None
    cert = ""
    if tls:
        cert, key = _certificate(workdir + "-tls")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    # anonymous admin: kubectl sends no bearer token over plain http (the baseline needs it)
    cluster = SimCluster(config, anonymous_admin=True, ssl_context=context).start()
    kubeconfig = cluster.kubeconfig_dict()
    if cert:
        with open(cert, "rb") as fh:
            kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"] = \
                base64.b64encode(fh.read()).decode("ascii")
    conn.send({"url": cluster.url, "kubeconfig": kubeconfig})
    try:
        while True:
            command, args = conn.recv()
            if command == "stop":
                break
            if command == "stats":
                reply: Any = {"/".join(k): n for k, n in cluster.stats.snapshot().items()}
            elif command == "total":
                reply = cluster.stats.count()
            elif command == "phases":
                reply = _phases(cluster, *args)
            elif command == "fault":
                cluster.faults.add(**args[0])
                reply = True
            elif command == "clear_faults":
                cluster.faults.clear()
                reply = True
            elif command == "namespaces":
                reply = _create_namespaces(cluster, *args)
            elif command == "seed":
                reply = _seed(cluster, *args)
            elif command == "finish":
                finisher = _Finisher(cluster, *args)
                reply = True
            elif command == "finish_progress":
                reply = finisher.progress() if finisher else {}

            else:
                reply = ValueError(f"unknown sim command {command!r}")
            conn.send(reply)
    finally:
        cluster.stop()
        conn.send("stopped")


class SimProcess:
    """`SimProcess(workdir).start()`; `.url`, `.pid`, `.kubeconfig`, queries, `.stop()`."""

    def __init__(self, workdir: str, nodes: int = SIM_NODES, tls: bool = False) -> None:
        self.workdir = workdir
        self.nodes = nodes
        self.tls = tls          # serve https, as every real API server does
        self.url = ""
        self.kubeconfig: dict = {}
        self._conn: Optional[multiprocessing.connection.Connection] = None
        self._proc: Optional[Any] = None

    @property
    def pid(self) -> int:
        assert self._proc is not None and self._proc.pid is not None
        return int(self._proc.pid)

    def start(self) -> SimProcess:
        ctx = multiprocessing.get_context("spawn")   # no fork of a threaded parent
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child, args=(child, self.workdir, self.nodes, self.tls),
                                 name="kgahp-sim", daemon=True)
        self._proc.start()
        self._conn = parent
        deadline = time.monotonic() + 60
        while not parent.poll(0.2):
            if not self._proc.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the simulated cluster did not start")
        hello = parent.recv()
        self.url, self.kubeconfig = hello["url"], hello["kubeconfig"]
        return self

    def _ask(self, command: str, *args: Any) -> Any:
        assert self._conn is not None
        self._conn.send((command, args))
        reply = self._conn.recv()
        if isinstance(reply, Exception):
            raise reply
        return reply

    def stats(self) -> dict[str, int]:
        """Requests so far by 'verb/resource/subresource' (watches count once, when opened)."""
        return dict(self._ask("stats"))

    def total_requests(self) -> int:
        return int(self._ask("total"))

    def phases(self, namespace: str, label: str) -> dict[str, int]:
        return dict(self._ask("phases", namespace, label))

    def add_fault(self, **rule: Any) -> None:
        """A fault rule of the sim's API (kgahp_sim.faults.Faults.add keywords)."""
        self._ask("fault", rule)

    def clear_faults(self) -> None:
        self._ask("clear_faults")

    def create_namespaces(self, names: Sequence[str]) -> int:
        return int(self._ask("namespaces", list(names)))

    def seed_pods(self, templates: dict[str, str], markers: tuple[str, str],
                  jobs: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
        """See _seed: (namespace, job directory, job name) per pod; returns pods and seconds."""
        return dict(self._ask("seed", templates, markers, list(jobs), self.nodes))

    def finish_pods(self, pods: Sequence[tuple[str, str]], window: float) -> None:
        """End these pods' containers (exit 0), evenly spread over `window` seconds."""
        self._ask("finish", list(pods), window)

    def finish_progress(self) -> dict[str, Any]:
        """{done, total, first, last}: pods ended so far; monotonic times of the first and the
        latest write (the clock is the system's, comparable across processes)."""
        return dict(self._ask("finish_progress"))

    def write_kubeconfig(self, path: str) -> str:
        import os

        import yaml

        with open(path, "w") as fh:
            yaml.safe_dump(self.kubeconfig, fh)
        os.chmod(path, 0o600)
        return path

    def stop(self) -> None:
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(("stop", ()))
                self._conn.poll(30)
            except (OSError, EOFError):
                pass
        if self._proc is not None:
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
        self._proc = None
        self._conn = None

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
