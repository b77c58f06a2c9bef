"""Pod scheduling gates and finalizers, as kube-apiserver v1.36 handles them.

Pinned to tests/data/k8s-recordings-v1.36: 24* (scheduling gates) and 23* (finalizers).

- A pod created with `spec.schedulingGates` gets `PodScheduled=False, reason SchedulingGated`
  from the apiserver itself (already in the 201 answer, 24a); binding it is 409 (24b); gates can
  only be removed, never added after creation (24c, 24c2); a gated pod may not name a node
  (24f); gate names are qualified names and unique (24e). Removing the gates leaves the
  condition until a binding sets `PodScheduled=True` (24d2).
- A pod with finalizers is only marked for deletion (`deletionTimestamp`) and stays until its
  last finalizer is removed; then it goes at once, DELETED without a MODIFIED (23a6, 23a7). No
  finalizer can be added to a pod that is being deleted (23a5, 422).
"""

from __future__ import annotations

from typing import Any

from kgahp_sim.validation import Cause, check_qualified_name, forbidden

GATED_REASON = "SchedulingGated"
GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"


def gate_names(pod: dict[str, Any]) -> list[str]:
    return [str((g or {}).get("name", "")) for g in (pod.get("spec") or {}).get(
        "schedulingGates") or ()]


def is_gated(pod: dict[str, Any]) -> bool:
    return bool((pod.get("spec") or {}).get("schedulingGates"))


def gated_condition(when: str) -> dict[str, Any]:
    return {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
            "lastTransitionTime": when, "reason": GATED_REASON, "message": GATED_MESSAGE}


def create_causes(pod: dict[str, Any]) -> list[Cause]:
    """Validation of a new pod's gates (24e, 24f)."""
    causes: list[Cause] = []
    seen: set[str] = set()
    for index, name in enumerate(gate_names(pod)):
        field = f"spec.schedulingGates[{index}]"
        problems = check_qualified_name(field, name)
        causes += problems
        if not problems and name in seen:
            causes.append(Cause(field, "FieldValueDuplicate", f'Duplicate value: "{name}"'))
        seen.add(name)
    if gate_names(pod) and (pod.get("spec") or {}).get("nodeName"):
        causes.append(forbidden("spec.nodeName",
                                "cannot be set until all schedulingGates have been cleared"))
    return causes


def update_causes(current: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    """Gates can only be removed (24c, 24c2); no finalizer may be added while deleting (23a5)."""
    causes: list[Cause] = []
    old = set(gate_names(current))
    for index, name in enumerate(gate_names(new)):
        if name not in old:
            causes.append(forbidden(
                f"spec.schedulingGates[{index}].name",
                f"only deletion is allowed, but found new scheduling gate '{name}'"))
    if current["metadata"].get("deletionTimestamp"):
        before = set(current["metadata"].get("finalizers") or ())
        added = [f for f in new["metadata"].get("finalizers") or () if f not in before]
        if added:
            listed = ", ".join(f'"{f}"' for f in added)
            cause = forbidden("metadata.finalizers",
                              "no new finalizers can be added if the object is being deleted, "
                              f"found new finalizers []string{{{listed}}}")
            causes += [cause, cause]   # the apiserver reports it twice (23a5)
    return causes
