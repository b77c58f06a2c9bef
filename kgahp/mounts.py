"""FailedMount checks: a pod on a node that has not started its containers for a while may be
waiting for a volume, which shows only as events. The namespace's FailedMount events are read
(one request, at most every MOUNT_CHECK_EVERY seconds, on a reconcile worker) so the lifecycle
can hold such pods, and a Secret of the job's own that is missing (its maker died between the
pod and the Secret) is made again.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from kgahp import lifecycle, workloads
from kgahp.errors import ApiError, KgahpError
from kgahp.jobad import parse_submit_ad
from kgahp.kube import events
from kgahp.podactions import PodActions, meta, phase
from kgahp.podspec import names

log = logging.getLogger(__name__)

MOUNT_CHECK_AFTER = 10.0    # seconds on a node without starting before a pod's events are read
MOUNT_CHECK_EVERY = 15.0    # ... at most this often per namespace


class MountChecks:
    """All state under one lock: written by reconcile workers and the watch thread."""

    def __init__(self, actions: PodActions, clock: Callable[[], float],
                 request_check: Callable[[str], None]) -> None:
        self.actions = actions
        self.clock = clock
        self._request_check = request_check    # enqueue one check of a namespace
        self._errors: dict[tuple[str, str], str] = {}   # FailedMount message by (ns, pod)
        self._checked: dict[str, float] = {}            # when each namespace was last read
        self._guard = threading.Lock()

    def error(self, namespace: str, name: str) -> str:
        with self._guard:
            return self._errors.get((namespace, name), "")

    def forget(self, namespace: str, name: str) -> None:
        with self._guard:
            self._errors.pop((namespace, name), None)

    def maybe_check(self, pod: dict) -> None:
        """Ask for a check of the pod's namespace if the pod has waited long enough on its
        node and the namespace was not read recently."""
        m = meta(pod)
        if phase(pod) != "Pending" or not (pod.get("spec") or {}).get(
                "nodeName") or m.get("deletionTimestamp"):
            return
        created = lifecycle.parse_time(m.get("creationTimestamp"))
        now = self.clock()
        namespace = str(m.get("namespace"))
        if created is None or now - created < MOUNT_CHECK_AFTER:
            return
        with self._guard:
            if now - self._checked.get(namespace, 0.0) < MOUNT_CHECK_EVERY:
                return
            self._checked[namespace] = now
        self._request_check(namespace)

    def check(self, namespace: str) -> None:
        try:
            failures = events.mount_failures(self.actions.kube, namespace)
        except ApiError as exc:
            log.warning("could not read the FailedMount events of %s: %s", namespace, exc)
            return
        for name, message in failures.items():
            pod = self.actions.cache.get(namespace, name)
            if pod is None or phase(pod) != "Pending":
                continue
            if message and not self._repair_secrets(pod, message):
                with self._guard:
                    known = self._errors.get((namespace, name))
                    self._errors[(namespace, name)] = message
                if known != message:
                    log.info("pod %s/%s cannot mount a volume: %s", namespace, name, message)

    def _repair_secrets(self, pod: dict, message: str) -> bool:
        """Recreate the pod's own Secrets when the kubelet says one of them is missing."""
        m = meta(pod)
        namespace, name = str(m.get("namespace")), str(m.get("name"))
        own = workloads.attempt_name(pod)   # job mode: the Secrets carry the Job's name
        missing = [s for s in (f"{own}-input", f"{own}-proxy")
                   if f'secret "{s}" not found' in message]
        job = (m.get("labels") or {}).get(names.LABEL_JOB, "")
        rec = self.actions.store.get(job) if job and missing else None
        if rec is None or not rec.ad:
            return False
        try:
            self.actions.ensure_secrets(namespace, job, pod, *self.actions.secret_contents(
                parse_submit_ad(rec.ad)))
        except (KgahpError, OSError) as exc:
            log.warning("pod %s/%s waits for its missing Secret(s) %s, which kgahp could not "
                        "recreate: %s", namespace, name, ", ".join(missing), exc)
            return False
        log.warning("pod %s/%s was waiting for its missing Secret(s) %s; recreated them",
                    namespace, name, ", ".join(missing))
        return True
