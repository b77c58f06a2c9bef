"""The cluster a benchmark runs against: the built-in simulator (a child process, with its
server-side request counter, its CPU and fault injection) or any cluster named by a kubeconfig,
reached only through the Kubernetes API as kgahp itself reaches it."""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import quote

from kubernetes import client, config

from benchmarks.simproc import SimProcess
from kgahp.podspec import names


@dataclass(frozen=True)
class Workload:
    """What a benchmark job runs: the ad's KubernetesImage, Cmd and Arguments (V2 syntax)."""
    image: str
    cmd: str = "/bin/true"
    arguments: str = ""

    @classmethod
    def from_command(cls, image: str, command: str) -> Workload:
        words = shlex.split(command)
        if not words:
            raise ValueError(f"no command for image {image}")
        return cls(image, words[0], " ".join(_v2_quote(w) for w in words[1:]))


def _v2_quote(word: str) -> str:
    """One argument in HTCondor's Arguments V2 syntax (single quotes, '' for a quote)."""
    if word and not any(c.isspace() or c in "'\"" for c in word):
        return word
    return "'" + word.replace("'", "''") + "'"


# Scripted containers of the simulator: no payload, an outcome chosen by the image name.
SIM_SLEEP = Workload("sim.invalid/sleep")
SIM_LIFE = Workload("sim.invalid/ok:2s")
# Elsewhere: a container that sleeps until deleted, and a two-second job.
DEFAULT_IMAGE = "registry.k8s.io/pause:3.10"
DEFAULT_IMAGE_COMMAND = "/pause"
DEFAULT_LIFE_IMAGE = "busybox:1.36"
DEFAULT_LIFE_COMMAND = "/bin/sh -c 'sleep 2'"


class ClusterTarget:
    """Any cluster: pods are counted, deleted and the version read through the API."""

    is_sim = False

    def __init__(self, kubeconfig: str, namespace: str = "default", context: str = "",
                 sleep: Optional[Workload] = None, life: Optional[Workload] = None) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self.namespace = namespace
        self.sleep = sleep or Workload.from_command(DEFAULT_IMAGE, DEFAULT_IMAGE_COMMAND)
        self.life = life or Workload.from_command(DEFAULT_LIFE_IMAGE, DEFAULT_LIFE_COMMAND)
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, context=context or None,
                                client_configuration=cfg, persist_config=False)
        cfg.retries = False
        self.api = client.ApiClient(cfg)

    @property
    def description(self) -> str:
        return f"{self.api.configuration.host} (kubeconfig {self.kubeconfig}" + (
            f", context {self.context})" if self.context else ")")

    # ---- plain API calls (the benchmark's own, never counted as kgahp's)
    def _call(self, method: str, path: str, query: Optional[list[tuple[str, Any]]] = None,
              timeout: float = 60.0) -> Any:
        _, url, headers, _, _ = self.api.param_serialize(
            method=method, resource_path=path, query_params=query or None,
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        resp = self.api.rest_client.pool_manager.request(method, url, headers=headers,
                                                         timeout=timeout)
        if not 200 <= resp.status <= 299:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status} {resp.data[:300]!r}")
        return json.loads(resp.data) if resp.data else {}

    def _pods_path(self, namespace: Optional[str] = None) -> str:
        return f"/api/v1/namespaces/{quote(namespace or self.namespace, safe='')}/pods"

    def server_version(self) -> str:
        info = self._call("GET", "/version")
        return str(info.get("gitVersion") or "?")

    def create_namespaces(self, names: list[str]) -> None:
        """Create these namespaces unless they exist."""
        for name in names:
            try:
                self._call("GET", f"/api/v1/namespaces/{quote(name, safe='')}")
            except RuntimeError:
                self._call_body("POST", "/api/v1/namespaces", {
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def _call_body(self, method: str, path: str, body: dict,
                   content_type: str = "application/json") -> Any:
        _, url, headers, _, _ = self.api.param_serialize(
            method=method, resource_path=path, body=body,
            header_params={"Accept": "application/json", "Content-Type": content_type},
            auth_settings=["BearerToken"])
        resp = self.api.rest_client.pool_manager.request(method, url, headers=headers,
                                                         body=json.dumps(body), timeout=60)
        if not 200 <= resp.status <= 299:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status} {resp.data[:300]!r}")
        return json.loads(resp.data) if resp.data else {}

    def phases(self, label: str, namespace: Optional[str] = None) -> dict[str, int]:
        """Pods carrying `label` (key=value) counted by phase ('Terminating' once deleted)."""
        out: dict[str, int] = {}
        token = ""
        while True:
            query: list[tuple[str, Any]] = [("labelSelector", label), ("limit", 500)]
            if token:
                query.append(("continue", token))
            page = self._call("GET", self._pods_path(namespace), query)
            for pod in page.get("items") or []:
                meta = pod.get("metadata") or {}
                phase = (pod.get("status") or {}).get("phase") or "Pending"
                key = "Terminating" if meta.get("deletionTimestamp") else phase
                out[key] = out.get(key, 0) + 1
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return out

    def delete_pods(self, label: str, timeout: float = 300.0,
                    namespace: Optional[str] = None) -> bool:
        """Delete every pod with `label` and wait until they are gone; False on timeout."""
        self._call("DELETE", self._pods_path(namespace),
                   [("labelSelector", label), ("gracePeriodSeconds", 0)])
        deadline = time.monotonic() + timeout
        while self.phases(label, namespace):
            self._release_finalizers(label, namespace)
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return True

    def _release_finalizers(self, label: str, namespace: Optional[str]) -> None:
        """The benchmark's pods may carry kgahp's tracking finalizer after their kgahp was
        killed (the recovery phases): at teardown no kgahp will release it, so the benchmark
        does, as an admin would, or the deleted pods would stay forever."""
        page = self._call("GET", self._pods_path(namespace), [("labelSelector", label)])
        for pod in page.get("items") or []:
            meta = pod.get("metadata") or {}
            if meta.get("deletionTimestamp") and meta.get("finalizers"):
                try:
                    self._call_body("PATCH", f"{self._pods_path(namespace)}/"
                                    f"{quote(str(meta.get('name')), safe='')}",
                                    {"metadata": {"finalizers": None}},
                                    content_type="application/merge-patch+json")
                except RuntimeError:
                    pass        # gone meanwhile, or changed: the next round sees it

    # ---- what only the simulator can tell
    def server_requests(self) -> Optional[int]:
        return None

    def server_stats(self) -> Optional[dict[str, int]]:
        return None

    def server_cpu(self) -> Optional[float]:
        return None

    def inject_429(self, method: str, path: str, retry_after: int) -> bool:
        return False

    def clear_faults(self) -> None:
        pass

    def close(self) -> None:
        self.api.close()


class SimTarget(ClusterTarget):
    """The simulator in a child process: the API as above, plus its request counter, its CPU,
    pod phases read from its store (no list request) and fault injection."""

    is_sim = True

    def __init__(self, sim: SimProcess, kubeconfig: str, namespace: str = "default") -> None:
        super().__init__(kubeconfig, namespace, sleep=SIM_SLEEP, life=SIM_LIFE)
        self.sim = sim

    @property
    def description(self) -> str:
        return (f"kgahp sim in a child process at {self.sim.url}, scripted containers "
                "(run_processes=False)")

    def phases(self, label: str, namespace: Optional[str] = None) -> dict[str, int]:
        return self.sim.phases(namespace or self.namespace, label)

    def create_namespaces(self, names: list[str]) -> None:
        self.sim.create_namespaces(names)

    def server_requests(self) -> Optional[int]:
        return self.sim.total_requests()

    def server_stats(self) -> Optional[dict[str, int]]:
        return self.sim.stats()

    def server_cpu(self) -> Optional[float]:
        from benchmarks import procstat

        return procstat.sample(self.sim.pid).cpu_seconds

    def inject_429(self, method: str, path: str, retry_after: int) -> bool:
        self.sim.add_fault(method=method, path=path, watch=False, status=429,
                           retry_after=retry_after)
        return True

    def clear_faults(self) -> None:
        self.sim.clear_faults()


def instance_label(name: str) -> str:
    return f"{names.LABEL_INSTANCE}={name}"
