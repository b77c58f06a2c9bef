"""The sim's kubelet: runs the pods bound to the sim's nodes and reports their status.

Each pod gets a `PodWorker` task. Containers are either real local processes (runtime.LocalProcess)
or scripted (runtime.ScriptedProcess / outcomes). The worker keeps the pod's status as a small model
in memory (`ContainerModel`s + conditions) and renders it with pure functions into the same
`status` a kubelet writes (recordings 01b, 07, 09, 14a), one `store.update` per change.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from kgahp_sim import outcomes as oc
from kgahp_sim.events import record_event
from kgahp_sim.nodes import node_name, node_ready_condition, pod_dir, pod_log_path
from kgahp_sim.quantity import QuantityError, parse_quantity
from kgahp_sim.runtime import (
    ConfigMissing,
    LocalProcess,
    ProcessSpec,
    ScriptedProcess,
    StartError,
    container_env,
    expand_env_references,
    referenced_objects,
    rewrite_mount_paths,
    volume_files,
    write_volume,
)
from kgahp_sim.store import now_rfc3339

if TYPE_CHECKING:
    from kgahp_sim.simconfig import SimConfig
    from kgahp_sim.store import Store, WatchEvent

log = logging.getLogger(__name__)

Process = Union[LocalProcess, ScriptedProcess]
Key = tuple[str, str]

HOST_IP = "127.0.0.1"
CGROUP_MOUNT = "/sys/fs/cgroup"
KUBELET_OWNED_CONDITIONS = ("Initialized", "ContainersReady", "Ready")
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
EVICTION_MESSAGE = "The node was low on resource: memory."
PREEMPTION_MESSAGE = "default-scheduler: preempting to accommodate a higher priority pod"
TAINT_MANAGER_MESSAGE = "Taint manager: deleting due to NoExecute taint"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
# Kubernetes' back-offs (10 s doubling to 300 s) compressed so a test sees them in seconds.
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 3.0
CONFIG_RETRY_SECONDS = 0.5
# How long a lost node's pods keep their NoExecute toleration (300 s in Kubernetes), compressed.
LOST_NODE_TOLERATION_SECONDS = 0.5


# ----- the status model and its rendering (pure) -------------------------------------------------

@dataclass
class ContainerModel:
    name: str
    image: str
    init: bool = False
    state: dict[str, Any] = field(default_factory=dict)       # {"waiting": {...}} etc.
    last_state: dict[str, Any] = field(default_factory=dict)
    restart_count: int = 0
    container_id: Optional[str] = None
    start_error: Optional[str] = None                        # why the last start failed
    ran: bool = False                                        # has been started at least once

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def exit_code(self) -> Optional[int]:
        terminated = self.state.get("terminated")
        return None if terminated is None else int(terminated["exitCode"])


def memory_limit_bytes(container: Mapping[str, Any]) -> int:
    """The container's memory limit in bytes; 0 when it has none."""
    limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    if limit is None:
        return 0
    with contextlib.suppress(QuantityError):
        return int(parse_quantity(limit))
    return 0


def image_id(image: str) -> str:
    """A stable fake digest reference, shaped like containerd's imageID."""
    reference = oc.image_with_tag(image)
    repository = reference.rsplit(":", 1)[0] if "@" not in reference else reference.split("@")[0]
    if "/" not in repository:
        repository = "docker.io/library/" + repository
    elif "." not in repository.split("/")[0] and ":" not in repository.split("/")[0]:
        repository = "docker.io/" + repository
    return f"{repository}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def render_container(model: ContainerModel) -> dict[str, Any]:
    out: dict[str, Any] = {"name": model.name, "state": model.state,
                           "lastState": model.last_state, "ready": model.running,
                           "restartCount": model.restart_count, "image": model.image,
                           "imageID": image_id(model.image) if model.ran else ""}
    if model.container_id and model.ran:
        out["containerID"] = model.container_id
    out["started"] = model.running
    return out


def pod_phase(containers: Sequence[ContainerModel], init_done: bool, init_failed: bool,
              restart_policy: str, terminating: bool) -> str:
    """The kubelet's getPhase for the main containers (plus init and termination outcomes)."""
    if init_failed:
        return "Failed"
    if not init_done:
        return "Pending"
    waiting_fresh = sum(1 for c in containers if "waiting" in c.state and not c.last_state)
    running = sum(1 for c in containers if c.running)
    stopped = [c for c in containers if "terminated" in c.state or
               ("waiting" in c.state and c.last_state)]
    if terminating and not running and waiting_fresh == 0:
        return "Succeeded" if all(c.exit_code == 0 for c in containers) else "Failed"
    if waiting_fresh > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if restart_policy == "Always":
        return "Running"
    if all(c.exit_code == 0 for c in stopped):
        return "Succeeded"
    return "Running" if restart_policy == "OnFailure" else "Failed"


@dataclass
class Condition:
    status: str
    since: str
    reason: Optional[str] = None
    message: Optional[str] = None

    def render(self, kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": kind, "status": self.status, "lastProbeTime": None,
                               "lastTransitionTime": self.since}
        if self.reason:
            out["reason"] = self.reason
        if self.message:
            out["message"] = self.message
        return out


def wanted_conditions(phase: str, inits: Sequence[ContainerModel],
                      mains: Sequence[ContainerModel], init_done: bool
                      ) -> dict[str, tuple[str, Optional[str], Optional[str]]]:
    """(status, reason, message) of the three kubelet-owned conditions."""
    if init_done:
        initialized: tuple[str, Optional[str], Optional[str]] = ("True", None, None)
    else:
        pending = " ".join(c.name for c in inits if c.exit_code != 0)
        initialized = ("False", "ContainersNotInitialized",
                       f"containers with incomplete status: [{pending}]")
    if phase in ("Succeeded", "Failed"):
        reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        ready: tuple[str, Optional[str], Optional[str]] = ("False", reason, None)
    elif mains and all(c.running for c in mains):
        ready = ("True", None, None)
    else:
        unready = " ".join(c.name for c in mains if not c.running)
        ready = ("False", "ContainersNotReady", f"containers with unready status: [{unready}]")
    return {"Initialized": initialized, "ContainersReady": ready, "Ready": ready}


def merge_status(status: dict[str, Any], mine: dict[str, Any],
                 conditions: Sequence[dict[str, Any]]) -> None:
    """Write the kubelet's fields into `status`, keeping others' conditions (PodScheduled...)."""
    foreign = [c for c in status.get("conditions") or ()
               if c.get("type") not in KUBELET_OWNED_CONDITIONS]
    qos = status.get("qosClass")
    for stale in ("reason", "message", "nominatedNodeName"):
        status.pop(stale, None)
    status.update(mine)
    status["conditions"] = foreign + list(conditions)
    if qos is not None:
        status["qosClass"] = qos
    order = ("phase", "conditions", "message", "reason", "hostIP", "podIP", "podIPs", "startTime",
             "initContainerStatuses", "containerStatuses", "qosClass")
    ordered = {k: status[k] for k in order if k in status}
    ordered.update({k: v for k, v in status.items() if k not in ordered})
    status.clear()
    status.update(ordered)


def terminated_state(code: int, started: str, reason: Optional[str] = None,
                     message: Optional[str] = None, container_id: Optional[str] = None
                     ) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": code,
                             "reason": reason or ("Completed" if code == 0 else "Error")}
    if message:
        state["message"] = message
    state["startedAt"] = started
    state["finishedAt"] = now_rfc3339()
    if container_id:
        state["containerID"] = container_id
    return {"terminated": state}


def backoff_delay(failures: int) -> float:
    """Compressed CrashLoopBackOff: first restart at once, then doubling up to the cap."""
    if failures <= 0:
        return 0.0
    return min(BACKOFF_FIRST * 2 ** (failures - 1), BACKOFF_MAX)


def should_restart(policy: str, code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and code != 0)


def non_root_refusal(pod: Mapping[str, Any], container: Mapping[str, Any],
                     root_images: Sequence[str]) -> Optional[str]:
    """The kubelet's runAsNonRoot check (verifyRunAsNonRoot) before it creates a container:
    the error text, or None when the container may start. An image's user is known here only
    through `root_images`; every other image counts as running as a numeric non-root user."""
    spec = pod.get("spec") or {}
    pod_ctx = spec.get("securityContext") or {}
    ctx = container.get("securityContext") or {}
    non_root = ctx.get("runAsNonRoot")
    if non_root is None:
        non_root = pod_ctx.get("runAsNonRoot")
    if not non_root:
        return None
    user = ctx.get("runAsUser")
    if user is None:
        user = pod_ctx.get("runAsUser")
    meta = pod.get("metadata") or {}
    who = f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"
    where = f"(pod: {json.dumps(who)}, container: {container.get('name')})"
    if user is not None:
        return None if user != 0 else f"container's runAsUser breaks non-root policy {where}"
    image = str(container.get("image") or "")
    if any(fnmatch.fnmatchcase(image, p) or fnmatch.fnmatchcase(oc.image_with_tag(image), p)
           for p in root_images):
        return f"container has runAsNonRoot and image will run as root {where}"
    return None


def scripted_messages(outcome: oc.Outcome, image: str, namespace: str) -> tuple[str, str]:
    """(waiting reason, message) for outcomes whose container never starts."""
    tagged = oc.image_with_tag(image)
    if outcome.kind == oc.PULL_ERROR:
        return ("ErrImagePull",
                f'rpc error: code = NotFound desc = failed to pull and unpack image "{tagged}": '
                f'failed to resolve reference "{tagged}": {tagged}: not found')
    if outcome.kind == oc.INVALID_NAME:
        return ("InvalidImageName",
                f'Failed to apply default image tag "{image}": couldn\'t parse image reference '
                f'"{image}": invalid reference format')
    return ("CreateContainerConfigError", 'secret "sim-config-error" not found')


# ----- the per-pod worker -----------------------------------------------------------------------

class PodWorker:
    def __init__(self, kubelet: Kubelet, pod: dict[str, Any]) -> None:
        self.kubelet = kubelet
        self.store = kubelet.store
        self.config = kubelet.config
        self.pod = pod
        meta = pod["metadata"]
        self.namespace: str = meta.get("namespace") or "default"
        self.name: str = meta["name"]
        self.uid: str = meta.get("uid") or ""
        self.node: str = pod["spec"]["nodeName"]
        spec = pod["spec"]
        self.restart_policy: str = spec.get("restartPolicy") or "Always"
        self.inits = [ContainerModel(c["name"], c.get("image", ""), init=True,
                                     state={"waiting": {"reason": "PodInitializing"}})
                      for c in spec.get("initContainers") or ()]
        first_reason = "PodInitializing" if self.inits else "ContainerCreating"
        self.mains = [ContainerModel(c["name"], c.get("image", ""),
                                     state={"waiting": {"reason": first_reason}})
                      for c in spec.get("containers") or ()]
        self.specs: dict[str, dict[str, Any]] = {
            c["name"]: c for c in list(spec.get("initContainers") or ()) +
            list(spec.get("containers") or ())}
        main_names = {m.name for m in self.mains}
        self.outcomes = {name: kubelet.outcome_for(self.pod, c, name in main_names)
                         for name, c in self.specs.items()}
        self.processes: dict[str, Process] = {}
        # Only pods with a real process need host directories (scripted ones stay in memory).
        self.runs_processes = any(o is None for o in self.outcomes.values())
        self.conditions: dict[str, Condition] = {}
        self.init_done = not self.inits
        self.init_failed = False
        self.terminating = False
        self.pod_reason: Optional[str] = None
        self.pod_message: Optional[str] = None
        self.start_time: Optional[str] = None
        self.pod_ip: Optional[str] = None
        self.stopping = asyncio.Event()          # no more (re)starts
        self.deletion = asyncio.Event()          # a graceful deletion was requested
        self.config_changed = asyncio.Event()    # a Secret/ConfigMap we read changed
        self.node_lost = False
        self.mounts: dict[str, Path] = {}        # volume name -> host directory
        self.refs = referenced_objects(spec)
        self.failed_mount_reported = False
        self.task: Optional[asyncio.Task[None]] = None
        self.children: list[asyncio.Future[Any]] = []   # cancelled with the worker

    # ----- plumbing --------------------------------------------------------------------------
    @property
    def grace_seconds(self) -> float:
        meta = self.pod["metadata"]
        if meta.get("deletionGracePeriodSeconds") is not None:
            return float(meta["deletionGracePeriodSeconds"])
        return float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))

    def lookup(self) -> dict[tuple[str, str], Optional[Mapping[str, Any]]]:
        out: dict[tuple[str, str], Optional[Mapping[str, Any]]] = {}
        for resource, name in self.refs:
            try:
                out[(resource, name)] = self.store.get(resource, self.namespace, name)
            except Exception:
                out[(resource, name)] = None
        return out

    def event(self, reason: str, message: str, *, warning: bool = False,
              container: Optional[str] = None) -> None:
        field_path = None
        if container is not None:
            kind = "initContainers" if any(c.name == container for c in self.inits) \
                else "containers"
            field_path = f"spec.{kind}{{{container}}}"
        record_event(self.store, self.pod, reason, message,
                     event_type="Warning" if warning else "Normal", host=self.node,
                     field_path=field_path)

    def set_condition(self, kind: str, status: str, reason: Optional[str],
                      message: Optional[str]) -> None:
        old = self.conditions.get(kind)
        since = old.since if old is not None and old.status == status else now_rfc3339()
        self.conditions[kind] = Condition(status, since, reason, message)

    def publish(self, extra_conditions: Sequence[dict[str, Any]] = ()) -> None:
        """Write the current model as the pod's status (a pods/status write)."""
        if self.node_lost:
            return   # a lost node reports nothing
        phase = pod_phase(self.mains, self.init_done, self.init_failed, self.restart_policy,
                          self.terminating)
        if self.pod_reason and phase not in ("Succeeded", "Failed"):
            phase = "Failed"
        for kind, (status, reason, message) in wanted_conditions(
                phase, self.inits, self.mains, self.init_done).items():
            self.set_condition(kind, status, reason, message)
        mine: dict[str, Any] = {"phase": phase, "hostIP": HOST_IP}
        if self.pod_reason:
            mine["reason"] = self.pod_reason
            mine["message"] = self.pod_message
        if self.pod_ip:
            mine["podIP"] = self.pod_ip
            mine["podIPs"] = [{"ip": self.pod_ip}]
        if self.start_time:
            mine["startTime"] = self.start_time
        if self.inits:
            mine["initContainerStatuses"] = [render_container(c) for c in self.inits]
        mine["containerStatuses"] = [render_container(c) for c in self.mains]
        rendered = [self.conditions[k].render(k) for k in KUBELET_OWNED_CONDITIONS]
        uid = self.uid

        def mutate(obj: dict[str, Any]) -> None:
            if obj["metadata"].get("uid") != uid:
                return
            status = obj.setdefault("status", {})
            merge_status(status, mine, rendered)
            for condition in extra_conditions:
                status["conditions"] = [c for c in status["conditions"]
                                        if c.get("type") != condition["type"]] + [condition]

        try:
            self.pod = self.store.update("pods", self.namespace, self.name, mutate, copy=False)
        except Exception as error:   # the pod is gone: nothing to report to
            log.debug("status of %s/%s not written: %s", self.namespace, self.name, error)

    async def sleep_unless(self, seconds: Optional[float], *events: asyncio.Event) -> bool:
        """Sleep; True if one of `events` was set first (None: wait for an event only)."""
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            done, _ = await asyncio.wait(waiters, timeout=seconds,
                                         return_when=asyncio.FIRST_COMPLETED)
            return bool(done)
        finally:
            for waiter in waiters:
                waiter.cancel()

    # ----- lifecycle -------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            for process in self.processes.values():
                process.kill()
            for child in self.children:
                child.cancel()
            await asyncio.gather(*self.children, return_exceptions=True)
            self.children.clear()
            raise
        except Exception:
            log.exception("kubelet worker for %s/%s failed", self.namespace, self.name)

    async def _run(self) -> None:
        if (self.pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return   # finished before we saw it (sim restart): nothing to run
        self.start_time = now_rfc3339()
        self.publish()
        if not await self.mount_volumes():
            return await self.finish_deletion(started=False)
        if await self.sleep_unless(self.config.start_delay, self.deletion):
            return await self.finish_deletion(started=False)
        self.pod_ip = self.kubelet.allocate_ip()
        containers = asyncio.ensure_future(self.run_containers())
        self.children.append(containers)
        waiters: dict[str, asyncio.Future[Any]] = {
            "containers": containers,
            "deletion": asyncio.ensure_future(self.deletion.wait()),
        }
        deadline = self.pod["spec"].get("activeDeadlineSeconds")
        if deadline is not None:
            waiters["deadline"] = asyncio.ensure_future(asyncio.sleep(float(deadline)))
        disruption = self.disruption()
        if disruption is not None:
            waiters["disruption"] = asyncio.ensure_future(asyncio.sleep(disruption.seconds))
        try:
            done, _ = await asyncio.wait(waiters.values(), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for name, waiter in waiters.items():
                if name != "containers" and not waiter.done():
                    waiter.cancel()
        if containers in done:
            return await self.after_completion(containers)
        if waiters["deletion"] in done:
            return await self.terminate_for_deletion(containers)
        if "deadline" in waiters and waiters["deadline"] in done:
            return await self.deadline_exceeded(containers)
        assert disruption is not None
        await self.disrupt(disruption, containers)

    async def after_completion(self, containers: asyncio.Future[Any]) -> None:
        """All containers ended for good; a later DELETE of the terminal pod is immediate."""
        await containers
        await self.deletion.wait()   # e.g. deleted while the last status write was in flight
        await self.finish_deletion(started=True)

    def disruption(self) -> Optional[oc.Outcome]:
        for outcome in self.outcomes.values():
            if outcome is not None and outcome.kind in (oc.EVICT, oc.PREEMPT, oc.NODE_LOST):
                return outcome
        return None

    async def stop_all(self, grace: float) -> None:
        self.stopping.set()
        await asyncio.gather(*(p.stop(grace) for p in list(self.processes.values())),
                             return_exceptions=True)

    async def terminate_for_deletion(self, containers: asyncio.Future[Any]) -> None:
        if any(o is not None and o.kind == oc.STUCK_TERMINATING for o in self.outcomes.values()):
            self.stopping.set()
            await asyncio.Event().wait()   # until force-deleted (the worker is then cancelled)
        self.terminating = True
        for model in self.inits + self.mains:
            if model.running:
                self.event("Killing", f"Stopping container {model.name}", container=model.name)
        await self.stop_all(self.grace_seconds)
        await containers
        self.publish()
        await self.finish_deletion(started=True)

    async def finish_deletion(self, started: bool) -> None:
        """End a graceful deletion: the pod object goes away (uid-checked)."""
        self.stopping.set()
        if not started:
            self.terminating = True
        current = self.store_pod()
        if current is None or current["metadata"].get("uid") != self.uid:
            return
        if not current["metadata"].get("deletionTimestamp"):
            return
        # As a kubelet does: DELETE with grace 0 and a uid precondition (MODIFIED + DELETED).
        with contextlib.suppress(Exception):
            self.store.delete("pods", self.namespace, self.name, grace_seconds=0,
                              uid_precondition=self.uid)
        left = self.store_pod()
        if left is not None and left["metadata"].get("uid") == self.uid \
                and not left["metadata"].get("finalizers"):   # finalizers hold it (23b2)
            with contextlib.suppress(Exception):
                self.store.remove("pods", self.namespace, self.name)

    def store_pod(self) -> Optional[dict[str, Any]]:
        try:
            return self.store.get("pods", self.namespace, self.name)
        except Exception:
            return None

    async def deadline_exceeded(self, containers: asyncio.Future[Any]) -> None:
        self.pod_reason, self.pod_message = "DeadlineExceeded", DEADLINE_MESSAGE
        self.event("DeadlineExceeded", DEADLINE_MESSAGE, warning=True)
        self.terminating = True
        await self.stop_all(self.grace_seconds)
        await containers
        self.publish()
        await self.deletion.wait()
        await self.finish_deletion(started=True)

    async def disrupt(self, outcome: oc.Outcome, containers: asyncio.Future[Any]) -> None:
        if outcome.kind == oc.EVICT:
            self.pod_reason, self.pod_message = "Evicted", EVICTION_MESSAGE
            self.event("Evicted", EVICTION_MESSAGE, warning=True)
            self.terminating = True
            await self.stop_all(0)
            await containers
            self.publish([Condition("True", now_rfc3339(), "TerminationByKubelet",
                                    EVICTION_MESSAGE).render("DisruptionTarget")])
        elif outcome.kind == oc.PREEMPT:
            self.publish([Condition("True", now_rfc3339(), "PreemptionByScheduler",
                                    PREEMPTION_MESSAGE).render("DisruptionTarget")])
            record_event(self.store, self.pod, "Preempted",
                         f"Preempted by pod {secrets.token_hex(4)}-sim on node {self.node}",
                         component="default-scheduler")
            with contextlib.suppress(Exception):
                self.store.delete("pods", self.namespace, self.name)
        else:
            await self.lose_node()
        await self.deletion.wait()
        if outcome.kind == oc.NODE_LOST:
            # the node comes back after the grace period and its kubelet finishes the deletion
            await asyncio.sleep(self.grace_seconds)
            self.node_lost = False
            self.kubelet.set_node_reachable(self.node, True)
        await self.terminate_for_deletion(containers)

    async def lose_node(self) -> None:
        """Node controller + taint manager, compressed: NotReady, then a NoExecute deletion."""
        self.kubelet.set_node_reachable(self.node, False)
        self.set_condition("Ready", "False", None, None)
        uid = self.uid
        when = now_rfc3339()

        def not_ready(obj: dict[str, Any]) -> None:
            if obj["metadata"].get("uid") != uid:
                return
            for condition in obj.get("status", {}).get("conditions") or ():
                if condition.get("type") == "Ready" and condition.get("status") != "False":
                    condition["status"] = "False"
                    condition["lastTransitionTime"] = when
                    condition.pop("reason", None)
                    condition.pop("message", None)

        with contextlib.suppress(Exception):
            self.store.update("pods", self.namespace, self.name, not_ready, copy=False)
        self.node_lost = True
        await asyncio.sleep(LOST_NODE_TOLERATION_SECONDS)
        condition = Condition("True", now_rfc3339(), "DeletionByTaintManager",
                              TAINT_MANAGER_MESSAGE).render("DisruptionTarget")

        def mark(obj: dict[str, Any]) -> None:
            if obj["metadata"].get("uid") == uid:
                status = obj.setdefault("status", {})
                status["conditions"] = [*(status.get("conditions") or ()), condition]

        with contextlib.suppress(Exception):
            self.store.update("pods", self.namespace, self.name, mark, copy=False)
        record_event(self.store, self.pod, "TaintManagerEviction",
                     f"Marking for deletion Pod {self.namespace}/{self.name}",
                     component="taint-controller")
        with contextlib.suppress(Exception):
            self.store.delete("pods", self.namespace, self.name)

    # ----- volumes -----------------------------------------------------------------------------
    def volume_dir(self, name: str) -> Path:
        return pod_dir(self.config, self.namespace, self.name) / "volumes" / name

    def materialise(self, report: bool) -> Optional[str]:
        """Create/refresh every volume; the first FailedMount message, or None when all mounted."""
        lookup = self.lookup()
        failure = None
        for volume in self.pod["spec"].get("volumes") or ():
            name = volume.get("name", "")
            target = self.volume_dir(name)
            if "hostPath" in volume:
                self.mounts[name] = Path(volume["hostPath"].get("path", "/"))
                continue
            try:
                files = volume_files(self.pod, volume, lookup)
            except ConfigMissing as missing:
                failure = failure or str(missing)
                continue
            if not self.runs_processes:
                continue   # scripted containers read nothing: checking the objects is enough
            if files is None:
                target.mkdir(parents=True, exist_ok=True)
            elif write_volume(target, files) and report:
                log.debug("volume %s of %s/%s refreshed", name, self.namespace, self.name)
            self.mounts[name] = target
        return failure

    async def mount_volumes(self) -> bool:
        """Mount everything, waiting for missing Secrets; False when deleted meanwhile."""
        logs = pod_log_path(self.config, self.namespace, self.name, "x").parent
        if logs.exists():   # a previous pod with the same name
            shutil.rmtree(logs, ignore_errors=True)
        if self.runs_processes:
            directory = pod_dir(self.config, self.namespace, self.name)
            shutil.rmtree(directory, ignore_errors=True)
            (directory / "root").mkdir(parents=True, exist_ok=True)
            logs.mkdir(parents=True, exist_ok=True)
        while True:
            failure = self.materialise(False)
            if failure is None:
                return True
            if not self.failed_mount_reported:
                self.failed_mount_reported = True
                self.event("FailedMount", failure, warning=True)
            self.config_changed.clear()
            if await self.sleep_unless(CONFIG_RETRY_SECONDS * 4, self.deletion,
                                       self.config_changed) and self.deletion.is_set():
                return False

    def on_config_changed(self) -> None:
        self.config_changed.set()
        if self.mounts and not self.stopping.is_set():
            self.materialise(True)   # secret/configMap volumes follow their object

    # ----- containers --------------------------------------------------------------------------
    async def run_containers(self) -> None:
        for model in self.inits:
            succeeded = await self.supervise(model)
            if not succeeded:
                if not self.stopping.is_set():
                    self.init_failed = True
                    self.publish()
                return
        self.init_done = True
        for model in self.mains:
            if model.state.get("waiting", {}).get("reason") == "PodInitializing":
                model.state = {"waiting": {"reason": "PodInitializing"}}
        if self.inits:
            self.publish()
        await asyncio.gather(*(self.supervise(model) for model in self.mains))

    async def supervise(self, model: ContainerModel) -> bool:
        """Run one container with the pod's restart policy; True if it ended with exit 0."""
        failures = 0
        while not self.stopping.is_set():
            process, started_at = await self.start_container(model)
            if process is None:
                return False
            limit = memory_limit_bytes(self.specs[model.name])
            watcher = (asyncio.ensure_future(process.enforce_memory_limit(limit))
                       if isinstance(process, LocalProcess) and limit else None)
            code = await process.wait()
            oom_killed = False
            if watcher is not None:
                oom_killed = await watcher
            self.processes.pop(model.name, None)
            outcome = self.outcomes.get(model.name)
            reason = "OOMKilled" if oom_killed or (
                outcome is not None and outcome.kind == oc.OOM) else None
            if model.start_error is not None:
                reason = "StartError"
            model.state = terminated_state(code, started_at, reason=reason,
                                           message=model.start_error,
                                           container_id=model.container_id)
            restart_policy = "OnFailure" if model.init and self.restart_policy == "Always" \
                else self.restart_policy
            again = not self.stopping.is_set() and should_restart(restart_policy, code)
            self.publish()
            if not again:
                return code == 0
            failures += 1
            delay = backoff_delay(failures - 1)
            model.last_state = model.state
            if delay > 0:
                model.state = {"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {int(max(delay, 1))}s restarting failed container="
                               f"{model.name} pod={self.name}_{self.namespace}({self.uid})"}}
                self.publish()
                if await self.sleep_unless(delay, self.stopping):
                    return False
            model.restart_count += 1
        return model.exit_code == 0

    async def start_container(self, model: ContainerModel) -> tuple[Optional[Process], str]:
        """Start (or keep failing to start) a container; (None, "") once stopping."""
        spec = self.specs[model.name]
        outcome = self.outcomes.get(model.name)
        model.start_error = None
        if outcome is not None and outcome.kind in oc.NEVER_STARTS:
            await self.never_start(model, outcome)
            return None, ""
        refusal = non_root_refusal(self.pod, spec, self.config.root_images)
        if refusal is not None:
            await self.refuse_config(model, refusal)
            return None, ""
        log_path = pod_log_path(self.config, self.namespace, self.name, model.name)
        if model.restart_count and log_path.exists():
            os.replace(log_path, log_path.with_suffix(".log.previous"))
        if outcome is not None:
            # Scripted containers write no log file: their log reads as empty.
            self.image_events(model)
            seconds = None if outcome.kind in oc.RUNS_UNTIL_DELETED or \
                outcome.kind in oc.ONCE_KINDS else outcome.seconds
            code = outcome.exit_code
            process: Process = ScriptedProcess(code, seconds, outcome.ignores_sigterm)
        else:
            started = await self.start_local(model, spec, log_path)
            if started is None:
                return None, ""
            process = started
        model.container_id = "containerd://" + secrets.token_hex(32)
        model.ran = True
        started_at = now_rfc3339()
        model.state = {"running": {"startedAt": started_at}}
        self.processes[model.name] = process
        self.event("Started", f"Started container {model.name}", container=model.name)
        self.publish()
        return process, started_at

    def image_events(self, model: ContainerModel) -> None:
        if model.ran:
            return
        spec = self.specs[model.name]
        if spec.get("imagePullPolicy") == "Always":
            self.event("Pulling", f'Pulling image "{model.image}"', container=model.name)
            self.event("Pulled", f'Successfully pulled image "{model.image}" in 212ms '
                       "(212ms including waiting)", container=model.name)
        else:
            self.event("Pulled", f'Container image "{model.image}" already present on machine',
                       container=model.name)

    async def never_start(self, model: ContainerModel, outcome: oc.Outcome) -> None:
        reason, message = scripted_messages(outcome, model.image, self.namespace)
        if outcome.kind == oc.PULL_ERROR:
            self.event("Pulling", f'Pulling image "{model.image}"', container=model.name)
            self.event("Failed", f'Failed to pull image "{model.image}": {message}',
                       warning=True, container=model.name)
        elif outcome.kind == oc.INVALID_NAME:
            self.event("InspectFailed", message, warning=True, container=model.name)
        self.event("Failed", f"Error: {reason}", warning=True, container=model.name)
        attempt = 0
        while True:
            model.state = {"waiting": {"reason": reason, "message": message}}
            self.publish()
            if outcome.kind != oc.PULL_ERROR:
                await self.stopping.wait()
                return
            attempt += 1
            if await self.sleep_unless(backoff_delay(attempt), self.stopping):
                return
            model.state = {"waiting": {"reason": "ImagePullBackOff",
                                       "message": f'Back-off pulling image "{model.image}"'}}
            self.publish()
            if await self.sleep_unless(backoff_delay(attempt), self.stopping):
                return

    async def refuse_config(self, model: ContainerModel, message: str) -> None:
        """CreateContainerConfigError until the pod goes away (the spec cannot change)."""
        self.image_events(model)
        self.event("Failed", f"Error: {message}", warning=True, container=model.name)
        model.state = {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
        self.publish()
        await self.stopping.wait()

    async def start_local(self, model: ContainerModel, spec: Mapping[str, Any],
                          log_path: Path) -> Optional[Process]:
        """Start the container's real process; waits out CreateContainerConfigError."""
        reported = False
        while True:
            try:
                process_spec = self.process_spec(spec, log_path)
                break
            except ConfigMissing as missing:
                model.state = {"waiting": {"reason": "CreateContainerConfigError",
                                           "message": str(missing)}}
                if not reported:
                    reported = True
                    self.event("Failed", f"Error: {missing}", warning=True, container=model.name)
                self.publish()
                self.config_changed.clear()
                await self.sleep_unless(CONFIG_RETRY_SECONDS, self.config_changed, self.stopping)
                if self.stopping.is_set():
                    return None
        self.image_events(model)
        if not process_spec.argv:
            # The image's own entrypoint is unknown here: the container "exits 0" at once.
            log_path.touch()
            return ScriptedProcess(0, 0)
        try:
            return await LocalProcess.start(process_spec)
        except StartError as error:
            # Exit code 128 / StartError, as containerd reports an exec failure; the restart
            # policy then applies as for any other exit.
            model.start_error = str(error)
            self.event("Failed", f"Error: {error}", warning=True, container=model.name)
            return ScriptedProcess(128, 0)

    def process_spec(self, spec: Mapping[str, Any], log_path: Path) -> ProcessSpec:
        root = pod_dir(self.config, self.namespace, self.name) / "root"
        mounts = []
        for mount in spec.get("volumeMounts") or ():
            host = self.mounts.get(mount.get("name", ""))
            if host is None:
                continue
            if mount.get("subPath"):
                host = host / mount["subPath"]
                host.mkdir(parents=True, exist_ok=True)
            mounts.append((str(mount.get("mountPath", "")), str(host)))
        # A container sees its own cgroup at /sys/fs/cgroup. These processes run on the host,
        # in no cgroup of their own: they see an empty directory there, never the host's
        # accounting (kgahp's wrapper then measures the job with the shell's `times`).
        cgroup = root.parent / "cgroup"
        cgroup.mkdir(parents=True, exist_ok=True)
        mounts.append((CGROUP_MOUNT, str(cgroup)))
        base = {"PATH": os.environ.get("PATH", os.defpath), "HOSTNAME": self.name,
                "HOME": str(root)}
        env = container_env(self.pod, spec, self.lookup(), base)
        env = {k: rewrite_mount_paths(v, mounts) for k, v in env.items()}
        command = [str(x) for x in spec.get("command") or ()]
        args = [expand_env_references(str(x), env) for x in spec.get("args") or ()]
        command = [expand_env_references(x, env) for x in command]
        argv = [rewrite_mount_paths(x, mounts) for x in command + args]
        cwd = str(root)
        if spec.get("workingDir"):
            rewritten = rewrite_mount_paths(str(spec["workingDir"]), mounts)
            candidate = Path(rewritten) if rewritten != spec["workingDir"] else \
                root / str(spec["workingDir"]).lstrip("/")
            candidate.mkdir(parents=True, exist_ok=True)
            cwd = str(candidate)
        return ProcessSpec(argv=argv, env=env, cwd=cwd, log_path=log_path,
                           stdin=bool(spec.get("stdin")))


# ----- the kubelet (all sim nodes) ---------------------------------------------------------------

class Kubelet:
    def __init__(self, store: Store, config: SimConfig) -> None:
        self.store = store
        self.config = config
        self.nodes = {node_name(i) for i in range(1, config.nodes + 1)}
        self.workers: dict[Key, PodWorker] = {}
        self.once_used: set[str] = set()
        # (namespace, resource, name) of a Secret/ConfigMap -> pods reading it
        self.readers: dict[tuple[str, str, str], set[Key]] = {}
        self.next_ip = 0

    def allocate_ip(self) -> str:
        self.next_ip += 1
        return f"127.10.{(self.next_ip // 250) % 250}.{self.next_ip % 250 + 2}"

    def outcome_for(self, pod: Mapping[str, Any], container: Mapping[str, Any],
                    is_main: bool) -> Optional[oc.Outcome]:
        annotations = pod["metadata"].get("annotations") if is_main else None
        outcome = oc.outcome_for(container.get("image", ""), annotations,
                                 self.config.run_processes)
        if outcome is not None and outcome.kind in oc.ONCE_KINDS:
            if outcome.spec in self.once_used:
                return oc.Outcome(oc.EXIT, 0, outcome.seconds, spec=outcome.spec)
            self.once_used.add(outcome.spec)
        return outcome

    def observe(self, event: WatchEvent) -> None:
        if event.resource == "pods":
            self.observe_pod(event)
        elif event.resource in ("secrets", "configmaps"):
            ref = (event.namespace or "", event.resource, event.obj["metadata"]["name"])
            for key in list(self.readers.get(ref, ())):
                worker = self.workers.get(key)
                if worker is not None:
                    worker.on_config_changed()

    def observe_pod(self, event: WatchEvent) -> None:
        pod = event.obj
        meta = pod["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        worker = self.workers.get(key)
        if worker is not None and worker.uid != meta.get("uid"):
            self.drop(key)
            worker = None
        if event.type == "DELETED":
            self.drop(key)
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if node not in self.nodes:
            return
        if worker is None:
            if meta.get("deletionTimestamp") and \
                    (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            worker = PodWorker(self, pod)
            self.workers[key] = worker
            for resource, name in worker.refs:
                self.readers.setdefault((worker.namespace, resource, name), set()).add(key)
            # A finished worker stays registered until the pod is deleted, so it is not re-run.
            worker.task = asyncio.ensure_future(worker.run())
        if meta.get("deletionTimestamp"):
            # worker.pod may be the stored object (events and lists share it): never edit it
            worker.pod = {**worker.pod, "metadata": {
                **worker.pod["metadata"], "deletionTimestamp": meta["deletionTimestamp"],
                "deletionGracePeriodSeconds": meta.get("deletionGracePeriodSeconds")}}
            worker.deletion.set()

    def drop(self, key: Key) -> None:
        worker = self.workers.pop(key, None)
        if worker is None:
            return
        for resource, name in worker.refs:
            readers = self.readers.get((worker.namespace, resource, name))
            if readers is not None:
                readers.discard(key)
                if not readers:
                    del self.readers[(worker.namespace, resource, name)]
        if worker.task is not None and not worker.task.done():
            worker.task.cancel()
        worker.task = None

    def set_node_reachable(self, name: str, reachable: bool) -> None:
        when = now_rfc3339()

        def mutate(node: dict[str, Any]) -> None:
            status = node.setdefault("status", {})
            others = [c for c in status.get("conditions") or () if c.get("type") != "Ready"]
            ready = node_ready_condition("True" if reachable else "Unknown", when)
            status["conditions"] = [*others, ready]
            taints = [t for t in node.get("spec", {}).get("taints") or ()
                      if t.get("key") != UNREACHABLE_TAINT]
            if not reachable:
                taints.append({"key": UNREACHABLE_TAINT, "effect": "NoExecute",
                               "timeAdded": when})
            node.setdefault("spec", {})["taints"] = taints
            if not taints:
                node["spec"].pop("taints")

        with contextlib.suppress(Exception):
            self.store.update("nodes", None, name, mutate, copy=False)

    async def run(self) -> None:
        """Pods are driven by their workers; when the sim stops, every container dies with it."""
        try:
            await asyncio.Event().wait()
        finally:
            tasks = [w.task for w in self.workers.values() if w.task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
