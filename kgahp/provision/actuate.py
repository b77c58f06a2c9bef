"""The provisioner's only writes: create pilot pods, delete pilots nobody uses, and keep the
`controller.kubernetes.io/pod-deletion-cost` annotation on each running pilot (busy pilots cost
more to delete, so a controller that must choose takes an idle one). Every request goes through
kgahp.kube (paced by the KGAHP_QPS limiter, retried when that is safe).

Which pilots go is decided here from the Pilot records: pending pilots first (they never
joined), then the idle pilots unclaimed the longest, and only those past the grace. A busy pilot
is never chosen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from kgahp.config import Settings
from kgahp.kube.api import Kube, label_selector
from kgahp.podspec.templates import Templates
from kgahp.provision import pilots as pilot_pods
from kgahp.provision.shapes import Shape
from kgahp.provision.supply import (
    ANN_DELETION_COST,
    BUSY,
    DONE,
    FAILED,
    IDLE,
    PENDING,
    STARTING,
    Pilot,
)

log = logging.getLogger(__name__)

BUSY_COST = "100"
IDLE_COST = "0"
_WAITING = (PENDING, STARTING, IDLE)


def removable(pilots: Iterable[Pilot], shape: str, *, now: float, grace: float) -> list[Pilot]:
    """The shape's waiting pilots past the grace, in the order they should go."""
    out = [p for p in pilots if p.shape == shape and p.state in _WAITING
           and now - p.since >= grace]
    return sorted(out, key=lambda p: (p.state == IDLE, p.since, p.name))


def stale(pilots: Iterable[Pilot], *, now: float, backoff_max: float,
          recovered: Iterable[str]) -> list[Pilot]:
    """Pods to clean up: pilots that ended, and failures no longer needed as a record."""
    healthy = set(recovered)
    return [p for p in pilots if p.state == DONE or (p.state == FAILED and (
        now - p.created > backoff_max or p.shape in healthy))]


def wanted_cost(pilot: Pilot) -> Optional[str]:
    """The deletion cost to set on the pilot now; None: it carries the right one already."""
    if pilot.state == BUSY:
        return None if pilot.deletion_cost == BUSY_COST else BUSY_COST
    if pilot.state == IDLE and pilot.deletion_cost not in (None, IDLE_COST):
        return IDLE_COST
    return None


@dataclass
class Actions:
    """What one cycle did (or, dry, would do)."""

    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    annotated: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Actuator:
    def __init__(self, kube: Optional[Kube], settings: Settings, templates: Templates, *,
                 dry_run: bool = False) -> None:
        self.kube = kube
        self.settings = settings
        self.templates = templates
        self.dry_run = dry_run or kube is None
        self.selector = label_selector(pilot_pods.selector(settings))

    def list_pilots(self, namespaces: Sequence[str]) -> list[dict[str, Any]]:
        """Every pod of this provisioner, one list (paged) per namespace."""
        if self.kube is None:
            return []
        pods: list[dict[str, Any]] = []
        for namespace in namespaces:
            items, _ = self.kube.list_pods(namespace, self.selector)
            pods.extend(items)
        return pods

    def create(self, shape: Shape, actions: Actions) -> None:
        pod = pilot_pods.pilot_pod(shape, self.settings, self.templates,
                                   suffix=pilot_pods.new_suffix())
        meta = pod["metadata"]
        ref = f"{meta['namespace']}/{meta['name']}"
        if not self.dry_run:
            assert self.kube is not None
            self.kube.create_pod(meta["namespace"], pod)
        actions.created.append(ref)

    def delete(self, pilot: Pilot, actions: Actions, why: str) -> None:
        ref = f"{pilot.namespace}/{pilot.name}"
        if not self.dry_run:
            assert self.kube is not None
            self.kube.delete_pod(pilot.namespace, pilot.name)
        log.info("deleting pilot %s (%s, %s): %s", ref, pilot.shape, pilot.state, why)
        actions.deleted.append(ref)

    def annotate(self, pilot: Pilot, cost: str, actions: Actions) -> None:
        ref = f"{pilot.namespace}/{pilot.name}"
        if not self.dry_run:
            assert self.kube is not None
            self.kube.patch_pod_metadata(pilot.namespace, pilot.name,
                                         {"annotations": {ANN_DELETION_COST: cost}},
                                         "annotating")
        actions.annotated.append(ref)
