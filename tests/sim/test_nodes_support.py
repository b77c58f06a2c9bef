"""Shared helpers for the node-side (scheduler/kubelet/runtime/GC) tests of the simulated cluster.

Each test gets its own SimCluster built with the config it needs (nodes, GPUs, scripted mode), with
short delays and a tmp workdir, and talks to it only through the official kubernetes client.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from kubernetes import client

from kgahp_sim.cluster import SimCluster
from kgahp_sim.simconfig import SimConfig

NAMESPACE = "default"
SimFactory = Callable[..., SimCluster]


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[SimFactory]:
    started: list[SimCluster] = []

    def make(**overrides: Any) -> SimCluster:
        settings: dict[str, Any] = {"workdir": str(tmp_path / f"sim{len(started)}"),
                                    "schedule_delay": 0.01, "start_delay": 0.05}
        settings.update(overrides)
        cluster = SimCluster(SimConfig(**settings)).start()
        started.append(cluster)
        return cluster

    yield make
    for cluster in started:
        cluster.stop()


def core(cluster: SimCluster) -> client.CoreV1Api:
    return client.CoreV1Api(cluster.api_client())


def pod_manifest(name: str, command: Optional[list[str]] = None, *, image: str = "busybox:1.36",
                 **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image}
    if command is not None:
        container["command"] = command
    container.update(spec.pop("container", {}))
    body: dict[str, Any] = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 2,
                            "containers": [container]}
    body.update(spec)
    metadata = {"name": name}
    metadata.update(body.pop("metadata", {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": body}


def wait_for(fetch: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 10.0,
             interval: float = 0.05) -> Any:
    """Poll fetch() until ok(value); the last value, or AssertionError with it on timeout."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout}s; last value: {value}")
        time.sleep(interval)
        value = fetch()
    return value


def wait_pod(api: client.CoreV1Api, name: str, ok: Callable[[Any], bool],
             timeout: float = 10.0) -> Any:
    return wait_for(lambda: api.read_namespaced_pod(name, NAMESPACE), ok, timeout)


def phase_in(*phases: str) -> Callable[[Any], bool]:
    return lambda pod: pod.status.phase in phases


def waiting_reason(pod: Any, index: int = 0) -> Optional[str]:
    statuses = pod.status.container_statuses or []
    if len(statuses) <= index or statuses[index].state.waiting is None:
        return None
    return statuses[index].state.waiting.reason


def terminated(pod: Any, index: int = 0) -> Any:
    statuses = pod.status.container_statuses or []
    return statuses[index].state.terminated if len(statuses) > index else None


def condition(pod: Any, kind: str) -> Any:
    return next((c for c in pod.status.conditions or () if c.type == kind), None)


def gone(api: client.CoreV1Api, name: str) -> bool:
    try:
        api.read_namespaced_pod(name, NAMESPACE)
    except client.ApiException as error:
        return error.status == 404
    return False


def events_for(api: client.CoreV1Api, name: str) -> list[tuple[str, str]]:
    items = api.list_namespaced_event(
        NAMESPACE, field_selector=f"involvedObject.name={name}").items
    return [(e.reason, e.message) for e in items]
