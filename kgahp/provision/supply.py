"""Supply: what the pilot pods of each shape are doing, from the pods and the pool's startd
ads. Pure: the caller passes the pods (as the API returns them), the ads and the time.

A pilot is PENDING (not yet running), STARTING (running, no startd ad yet), IDLE (its startd
is unclaimed), BUSY (a slot of it is claimed), FAILED (it will not start or it crashed: the
kgahp lifecycle rules say why), DONE (it ended on its own or was evicted: nothing to count) or
TERMINATING. Startd ads are tied to pods by name: `K8sPodName` when the pilot advertises it
(kgahp's pilots do), else the host part of `Machine` (a pod's hostname is its name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Optional

import classad2

from kgahp import lifecycle
from kgahp.config import LifecycleSettings
from kgahp.model import COMPLETED, HELD, REMOVED

LABEL_SHAPE = "kgahp.htcondor.org/pilot-shape"
ANN_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
POD_NAME_ATTRIBUTE = "K8sPodName"

PENDING, STARTING, IDLE, BUSY = "pending", "starting", "idle", "busy"
FAILED, DONE, TERMINATING = "failed", "done", "terminating"
CLAIMED_STATES = frozenset({"Claimed", "Matched", "Preempting"})


@dataclass(frozen=True)
class Pilot:
    namespace: str
    name: str
    shape: str
    state: str
    since: float               # when it entered its state, as far as is known (epoch seconds)
    created: float
    reason: str = ""           # for FAILED: why, in the lifecycle rules' words
    deletion_cost: Optional[str] = None   # the pod's current pod-deletion-cost annotation


@dataclass(frozen=True)
class ShapeSupply:
    pending: int = 0           # PENDING and STARTING: pilots not in the pool yet
    idle: int = 0
    busy: int = 0
    failed: int = 0            # failures on record (failed pods kept for the backoff)
    last_failure: Optional[float] = None   # creation time of the newest failed pilot
    failure_reason: str = ""   # why the newest failed pilot failed
    recovered: bool = False    # a pilot created after the newest failure reached the pool

    @property
    def total(self) -> int:
        return self.pending + self.idle + self.busy


def pod_name_of(ad: classad2.ClassAd) -> Optional[str]:
    """The pod a startd ad belongs to, as the pilot advertises it."""
    for attribute in (POD_NAME_ATTRIBUTE, "Machine"):
        value = ad.get(attribute)
        if isinstance(value, str) and value:
            return value.split(".")[0] if attribute == "Machine" else value
    return None


def _is_busy(ad: classad2.ClassAd) -> bool:
    if ad.get("State") in CLAIMED_STATES:
        return True
    # a partitionable slot stays Unclaimed while its dynamic slots run jobs
    children = ad.get("NumDynamicSlots")
    return isinstance(children, int) and not isinstance(children, bool) and children > 0


def _entered(ad: classad2.ClassAd) -> Optional[float]:
    value = ad.get("EnteredCurrentState")
    return float(value) if isinstance(value, (int, float)) and not isinstance(
        value, bool) else None


def ads_by_pod(ads: Iterable[classad2.ClassAd]) -> dict[str, list[classad2.ClassAd]]:
    out: dict[str, list[classad2.ClassAd]] = {}
    for ad in ads:
        name = pod_name_of(ad)
        if name:
            out.setdefault(name, []).append(ad)
    return out


def classify(pod: Mapping[str, Any], ads: Sequence[classad2.ClassAd], *, now: float,
             settings: LifecycleSettings) -> Pilot:
    """One pilot pod and its startd ads -> its Pilot record."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    created = lifecycle.parse_time(meta.get("creationTimestamp")) or now
    base = Pilot(str(meta.get("namespace", "")), str(meta.get("name", "")),
                 str(labels.get(LABEL_SHAPE, "")), PENDING, created, created,
                 deletion_cost=annotations.get(ANN_DELETION_COST))
    if meta.get("deletionTimestamp"):
        return replace(base, state=TERMINATING)
    verdict = lifecycle.classify(pod, now=now, settings=settings)
    state = verdict.final if verdict.action is lifecycle.Action.COLLECT else verdict.state
    status = state.job_status if state is not None else 0
    if status == HELD and state is not None:
        return replace(base, state=FAILED, reason=state.hold_reason or verdict.reason)
    if status == COMPLETED and state is not None:
        if state.exit_code == 0 and not state.exit_by_signal:
            return replace(base, state=DONE)
        code = f"signal {state.exit_signal}" if state.exit_by_signal else f"code {state.exit_code}"
        return replace(base, state=FAILED, reason=f"the pilot exited with {code}")
    if status == REMOVED or verdict.action in (lifecycle.Action.RECREATE,
                                               lifecycle.Action.DELETE):
        return replace(base, state=DONE, reason=verdict.reason)
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        return base
    if not ads:
        started = lifecycle.parse_time((pod.get("status") or {}).get("startTime")) or created
        return replace(base, state=STARTING, since=started)
    if any(_is_busy(ad) for ad in ads):
        return replace(base, state=BUSY, since=max((_entered(a) or created) for a in ads))
    since = max((_entered(a) or created) for a in ads)
    return replace(base, state=IDLE, since=since)


def classify_all(pods: Iterable[Mapping[str, Any]], ads: Iterable[classad2.ClassAd], *,
                 now: float, settings: LifecycleSettings) -> list[Pilot]:
    by_pod = ads_by_pod(ads)
    return [classify(p, by_pod.get(str((p.get("metadata") or {}).get("name")), []), now=now,
                     settings=settings) for p in pods]


def pilot_lifecycle(settings: LifecycleSettings, unschedulable_limit: float) -> LifecycleSettings:
    """The lifecycle rules as the provisioner applies them: a pilot that stays unschedulable
    past KGAHP_PROVISION_UNSCHEDULABLE_LIMIT counts as failed (0 = never)."""
    return replace(settings, pending_limit=unschedulable_limit)


def summarize(pilots: Iterable[Pilot], shapes: Iterable[str], *,
              backoff_max: float, now: float) -> dict[str, ShapeSupply]:
    """Per shape: counts, and the failures on record within the last `backoff_max` seconds."""
    by_shape: dict[str, list[Pilot]] = {name: [] for name in shapes}
    for pilot in pilots:
        if pilot.shape in by_shape:
            by_shape[pilot.shape].append(pilot)
    out = {}
    for name, items in by_shape.items():
        failures = sorted((p for p in items
                           if p.state == FAILED and now - p.created <= backoff_max),
                          key=lambda p: p.created)
        newest = failures[-1] if failures else None
        recovered = newest is not None and any(
            p.state in (IDLE, BUSY) and p.created > newest.created for p in items)
        out[name] = ShapeSupply(
            pending=sum(p.state in (PENDING, STARTING) for p in items),
            idle=sum(p.state == IDLE for p in items),
            busy=sum(p.state == BUSY for p in items),
            failed=0 if recovered else len(failures),
            last_failure=newest.created if newest else None,
            failure_reason=newest.reason if newest else "",
            recovered=recovered,
        )
    return out
