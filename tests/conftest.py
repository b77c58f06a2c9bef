"""Shared fixtures: `sim` (a running simulated cluster) and `sim_kubeconfig`.

With KGAHP_TEST_KUBECONFIG=/path set, `sim` wraps that real cluster instead; tests that need
sim-only powers (stats, faults, compaction, the store) call `sim.require_sim()` and are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REAL_KUBECONFIG = os.environ.get("KGAHP_TEST_KUBECONFIG", "")


class RealCluster:
    """The thin stand-in for SimCluster when the tests run against a real cluster."""

    is_sim = False

    def __init__(self, kubeconfig: str) -> None:
        from kubernetes import config

        self.kubeconfig = kubeconfig
        self._client = config.new_client_from_config(config_file=kubeconfig)
        self.url = self._client.configuration.host

    def api_client(self, *, restricted: bool = False) -> Any:
        if restricted:
            pytest.skip("no restricted user is known for a real cluster")
        return self._client

    def write_kubeconfig(self, path: str, *, restricted: bool = False,
                         namespace: str = "default") -> str:
        if restricted:
            pytest.skip("no restricted user is known for a real cluster")
        return self.kubeconfig

    def require_sim(self, why: str = "needs sim-only powers (stats, faults, compaction)") -> None:
        pytest.skip(why)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Any]:
    if REAL_KUBECONFIG:
        yield RealCluster(REAL_KUBECONFIG)
        return
    from kgahp_sim import SimCluster, SimConfig

    config = SimConfig(workdir=str(tmp_path / "sim"), schedule_delay=0.01, start_delay=0.05,
                       bookmark_interval=1.0)
    cluster = SimCluster(config, future_rv_wait=0.3)
    cluster.is_sim = True  # type: ignore[attr-defined]
    cluster.require_sim = lambda why="": None  # type: ignore[attr-defined]
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def sim_kubeconfig(sim: Any, tmp_path: Path) -> str:
    return str(sim.write_kubeconfig(str(tmp_path / "kubeconfig")))
