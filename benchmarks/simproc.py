"""The simulated cluster in its own process, so its CPU never competes with the benchmark's
client for one GIL, and a Pipe to ask it for request counts and pod phases."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import time
from collections import Counter
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


def _child(conn: multiprocessing.connection.Connection, workdir: str) -> None:
    import logging

    from kgahp_sim import SimCluster, SimConfig

    logging.basicConfig(level=logging.WARNING)
    config = SimConfig(nodes=SIM_NODES, cpu=SIM_NODE_CPU, memory=SIM_NODE_MEMORY,
                       workdir=workdir, run_processes=False)
    # anonymous admin: kubectl sends no bearer token over plain http (the baseline needs it)
    cluster = SimCluster(config, anonymous_admin=True).start()
    conn.send({"url": cluster.url, "kubeconfig": cluster.kubeconfig_dict()})
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
            else:
                reply = ValueError(f"unknown sim command {command!r}")
            conn.send(reply)
    finally:
        cluster.stop()
        conn.send("stopped")


class SimProcess:
    """`SimProcess(workdir).start()`; `.url`, `.pid`, `.kubeconfig`, queries, `.stop()`."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
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
        self._proc = ctx.Process(target=_child, args=(child, self.workdir), name="kgahp-sim",
                                 daemon=True)
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
