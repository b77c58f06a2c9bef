"""The sim's control plane besides the API server: nodes, scheduler, kubelet and garbage collector.

`start` is called once by the cluster on the sim's event loop. One store subscription feeds every
controller, in order, so each sees the same event sequence as a watch would.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kgahp.sim.store import Store

    from kgahp.sim.simconfig import SimConfig

log = logging.getLogger(__name__)


def ensure_workdir(config: SimConfig) -> pathlib.Path:
    """The sim's working directory; an empty `workdir` is replaced by a fresh temp dir (once)."""
    if not config.workdir:
        config.workdir = tempfile.mkdtemp(prefix="kgahp-sim-")
    path = pathlib.Path(config.workdir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def pod_dir(config: SimConfig, namespace: str, pod: str) -> pathlib.Path:
    """Per-pod host directory: root/ is the working directory, volumes/<name> back the volumes."""
    return ensure_workdir(config) / "pods" / namespace / pod


def pod_log_path(config: SimConfig, namespace: str, pod: str, container: str) -> pathlib.Path:
    """Where the kubelet writes a container's combined stdout+stderr (may not exist yet)."""
    return ensure_workdir(config) / "logs" / namespace / pod / f"{container}.log"


async def start(store: Store, config: SimConfig) -> list[asyncio.Task[Any]]:
    """Create the Node objects and start scheduler, kubelet and GC; their tasks."""
    ensure_workdir(config)
    return []
