"""The sim's control plane besides the API server: nodes, scheduler, kubelet and garbage collector.

`start` is called once by the cluster on the sim's event loop. One store subscription feeds every
controller, in order, so each sees the same event sequence a watch would.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from kgahp_sim.gc import GarbageCollector
from kgahp_sim.jobcontroller import JobController
from kgahp_sim.kubelet import Kubelet
from kgahp_sim.kueue import KueueStandIn
from kgahp_sim.nodes import ensure_workdir, node_name, node_object
from kgahp_sim.scheduler import Scheduler
from kgahp_sim.store import WatchEvent

if TYPE_CHECKING:
    from kgahp_sim.simconfig import SimConfig
    from kgahp_sim.store import Store

log = logging.getLogger(__name__)


async def start(store: Store, config: SimConfig) -> list[asyncio.Task[Any]]:
    """Create the Node objects and start scheduler, kubelet and GC; their tasks."""
    ensure_workdir(config)
    queue = store.subscribe()   # before creating anything, so every object is seen once
    for resource in ("nodes", "secrets", "configmaps", "pods", "jobs"):
        existing, _ = store.list(resource, None)
        for obj in existing:
            queue.put_nowait(WatchEvent("ADDED", resource, obj["metadata"].get("namespace"), obj,
                                        store.rv))
    names = {obj["metadata"]["name"] for obj in store.list("nodes", None)[0]}
    for index in range(1, config.nodes + 1):
        if node_name(index) not in names:
            store.create("nodes", None, node_object(config, index))
    scheduler = Scheduler(store, config)
    kubelet = Kubelet(store, config)
    collector = GarbageCollector(store)
    kueue = KueueStandIn(store, config)
    jobs = JobController(store)

    async def dispatch() -> None:
        while True:
            event = await queue.get()
            for observer in (scheduler.observe, kubelet.observe, collector.observe,
                             kueue.observe, jobs.observe):
                try:
                    observer(event)
                except Exception:   # one bad object must not stop the control plane
                    log.exception("controller failed on %s %s", event.type, event.resource)

    return [asyncio.create_task(dispatch(), name="sim-dispatch"),
            asyncio.create_task(scheduler.run(), name="sim-scheduler"),
            asyncio.create_task(kubelet.run(), name="sim-kubelet")]
