"""The reconciler: one level-based `reconcile(namespace, job)` that brings a job's pods in line
with its record, run by the keyed work queue (kgahp/workqueue.py) on its own workers.

It reads the job's pods from the cache and its record from the store at the time it runs, never
an event's snapshot (the one exception: a deleted pod's last state, which the cache no longer
has and which says why it went, kept until the job's next reconcile). Running it again, or for
nothing, is harmless. The rules are today's: collect a finished pod, recreate a disrupted or
vanished one, force-delete one stuck terminating, delete superseded attempts, record a removal,
delete a finished pod after the retention and its own Secrets once its result is recorded, and
read FailedMount events for pods that do not start.

Queue keys: ("job", ns, job) → `reconcile`; ("adopt", ns, job) → taking over an older kgahp's
job, then `reconcile`; ("mounts", ns) → one FailedMount check.

Writes that only tidy up after an answer is recorded go to a second queue with one worker
(`tidy`): ("release", ns, pod) → removing the tracking finalizer, ("retire", ns, pod) → deleting
a finished pod whose retention is over, ("secrets", ns, pod) → deleting its own Secrets. Each is
one rate-limited request per pod; on the job queue, a burst of them (10,000 pods ending within a
minute, or their retention ending together) held every reconcile worker in the rate limiter, and
the jobs behind them waited minutes to be answered COMPLETED (benchmark: 20 answers a second,
the QPS). One worker keeps at most one of them waiting for a token at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from kgahp import collection, disruption, judging, lifecycle, workloads
from kgahp.finalizers import FinalizerKeeper
from kgahp.model import HELD, IDLE, REMOVED, RUNNING, JobState
from kgahp.mounts import MountChecks
from kgahp.podactions import PodActions, attempt_of, meta, phase
from kgahp.podspec import names
from kgahp.recreation import recreate
from kgahp.store import JobRecord
from kgahp.workqueue import WorkQueue

log = logging.getLogger(__name__)


WorkKey = tuple[str, ...]

# A job's reconcile waits this long after a watch event of its pending pod, so that the events
# of a pod's start make one run: ADDED, scheduled, ContainerCreating, which a real cluster spreads
# over up to a second (the Kubernetes Job controller batches a Job's pod events for the same 1 s);
# the event that it runs, or ended, or went, runs it at once. Measured in the simulator (which
# starts a pod 0.25 s after it is created, so its Running event comes within the batch): 3.3
# reconciles per submitted pod unbatched, 1.75 with 0.25 s, 1.0 with 1 s. Batching the events of
# finishing pods as well cost more than it saved: theirs come apart (kgahp's own collect,
# finalizer release and delete), and a timed wake per key is dearer than an immediate one.
# Nothing waits on it: a status reads the cache itself, and enqueues the job at once when the
# pod it sees calls for action.
EVENT_BATCH_SECONDS = 1.0


class Reconciler:
    def __init__(self, actions: PodActions, *, workers: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.actions = actions
        self.settings = actions.settings
        self.cache = actions.cache
        self.store = actions.store
        self.clock = clock
        self.queue: WorkQueue[WorkKey] = WorkQueue(self._handle, workers=workers,
                                                   name="reconcile")
        self.tidy: WorkQueue[WorkKey] = WorkQueue(self._tidy, workers=1, name="tidy")
        self.mounts = MountChecks(actions, lambda: self.clock(),
                                  lambda ns: self.queue.add(("mounts", ns)))
        # Kept until the job's next reconcile, by (namespace, job), under _pending_guard: the
        # last state of each pod deleted since; the jobs being recreated (status shows them
        # IDLE); the jobs whose pod a status found gone.
        self._departed: dict[tuple[str, str], dict[str, dict]] = {}
        self._recreating: set[tuple[str, str]] = set()
        self._vanish_seen: set[tuple[str, str]] = set()
        # job -> attempt whose final result a status answer gave, until the store says so
        self._reported_pending: dict[str, int] = {}
        self._pending_guard = threading.Lock()
        self.finalizers = FinalizerKeeper(actions.kube, self.store, self.cache, self.enqueue)

    def start(self) -> None:
        self.queue.start()
        self.tidy.start()
        self.cache.add_listener(self.on_pod_event)
        self.queue.add(("finalizers",), self.finalizers.interval)

    def stop(self, drain: float = 0.0) -> None:
        """Stop both queues. With `drain` seconds, the work already queued is done first
        (the reconciles, then the tidy-ups they asked for), within that time in all."""
        deadline = time.monotonic() + drain
        self.queue.stop(drain, drain=drain > 0)
        self.tidy.stop(max(0.0, deadline - time.monotonic()), drain=drain > 0)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until both queues have nothing ready or running (tests, shutdown): a tidy-up
        can enqueue a job (its patched pod), and a reconcile a tidy-up."""
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(deadline - time.monotonic(), 0.0)

        while self.queue.wait_idle(left()) and self.tidy.wait_idle(left()):
            if self.queue.wait_idle(0.0) and self.tidy.wait_idle(0.0):
                return True   # neither gave the other new work meanwhile
        return False

    def adopt_legacy(self, namespace: str, job: str) -> None:
        """Ask for an older kgahp's job to be taken over (its pods relabelled, its record
        copied), then reconciled."""
        self.queue.add(("adopt", namespace, job))

    def enqueue(self, namespace: str, job: str, after: float = 0.0) -> None:
        """Ask for the job to be reconciled (now, or in `after` seconds)."""
        self.queue.add(("job", namespace, job), after)

    # ------------------------------------------------------------------ the watch's side
    def on_pod_event(self, kind: str, pod: dict) -> None:
        """Called from the watch thread for every change. It only notes what the cache can no
        longer tell (a deleted pod's last state) and enqueues the job: the reconcile, on a
        worker, decides and acts, so a slow store or API never stalls the watch."""
        m = meta(pod)
        namespace, name = str(m.get("namespace")), str(m.get("name"))
        starting = kind != "DELETED" and phase(pod) == "Pending"
        if not starting:
            self.mounts.forget(namespace, name)
            if kind == "DELETED":
                self.actions.forget_pod(namespace, workloads.attempt_name(pod))
                self.finalizers.forget(namespace, name)
        job = (m.get("labels") or {}).get(names.LABEL_JOB)
        if not job:
            return
        if kind == "DELETED":
            with self._pending_guard:
                self._departed.setdefault((namespace, job), {})[name] = pod
        if starting:
            self.queue.add(("job", namespace, job), EVENT_BATCH_SECONDS, batch=True)
        else:
            self.enqueue(namespace, job)

    def on_job_event(self, kind: str, obj: dict) -> None:
        """Job mode: a change of one of this instance's Jobs (its pod's events come anyway;
        this catches a Job whose pod never came, or went before the Job said why)."""
        m = meta(obj)
        job = (m.get("labels") or {}).get(names.LABEL_JOB)
        if job:   # at once: a Job event says it was suspended (Kueue), ended or went
            self.enqueue(str(m.get("namespace")), job)

    # ------------------------------------------------------------------ what status asks
    def classify(self, pod: dict, rec: Optional[JobRecord]) -> lifecycle.Verdict:
        m = meta(pod)
        return judging.classify(
            pod, rec, now=self.clock(), settings=self.settings, jobs=self.actions.jobs,
            templates=self.actions.templates,
            mount_error=self.mounts.error(str(m.get("namespace")), str(m.get("name"))))

    def note_reported(self, namespace: str, job: str, attempt: int) -> None:
        """A status answer gave the attempt's final result: the job's reconcile records that
        (status itself never writes the store)."""
        with self._pending_guard:
            self._reported_pending[job] = attempt
        self.enqueue(namespace, job)

    def reported(self, rec: JobRecord) -> bool:
        """A status answer gave the attempt's final result (in the store, or about to be)."""
        if rec.reported:
            return True
        with self._pending_guard:
            if self._reported_pending.get(rec.job) == rec.attempt:
                return True
        # `rec` may predate the reconcile that wrote it down (it writes, then forgets)
        now = self.store.get(rec.job)
        return now is not None and now.reported and now.attempt == rec.attempt

    def vanished(self, namespace: str, job: str, rec: Optional[JobRecord], *,
                 record: bool = True) -> JobState:
        """The job's pod is gone. `record`: act on it (the reconcile); otherwise (a status)
        only ask the job's reconcile to, and answer what it will record."""
        if rec is None or rec.cancelled:
            # Nothing kgahp knows of: it cannot have finished well, so never COMPLETED.
            return JobState(REMOVED)
        with self._pending_guard:
            recreating = (namespace, job) in self._recreating
        if recreating:
            # a disrupted pod (an eviction) can be gone before its successor is recorded:
            # that is a job being moved, not one deleted
            return JobState(IDLE, num_restarts=rec.restarts + 1)
        if self.actions.jobs is not None:   # job mode: the attempt's Job may say more
            told = self.actions.jobs.without_pod(namespace, job, rec.attempt, rec.restarts)
            if told is not None:
                if told.state.job_status != IDLE and record:
                    self._record_final(namespace, job, rec.attempt, told.state, told.reason)
                elif told.state.job_status != IDLE:
                    with self._pending_guard:
                        self._vanish_seen.add((namespace, job))
                    self.enqueue(namespace, job)
                return told.state
        verdict = lifecycle.vanished(ever_started=rec.started, restarts=rec.restarts,
                                     settings=self.settings.lifecycle, namespace=namespace,
                                     name=names.pod_name(job, rec.attempt))
        if disruption.is_disruption(verdict):
            verdict = judging.under_policy(
                verdict, disruption.queue_of_ad(rec.ad), started=rec.started,
                ref=f"{namespace}/{names.pod_name(job, rec.attempt)}", settings=self.settings,
                templates=self.actions.templates)
        if disruption.stopped(verdict):
            if not record:
                with self._pending_guard:
                    self._vanish_seen.add((namespace, job))
                self.enqueue(namespace, job)
                return verdict.state
            self._record_final(namespace, job, rec.attempt, verdict.state, verdict.reason)
            final = (self.store.get(job) or rec).final
            return final if final is not None else verdict.state
        if verdict.action is lifecycle.Action.RECREATE:
            with self._pending_guard:
                self._recreating.add((namespace, job))
            self.enqueue(namespace, job)
        elif verdict.state.job_status == REMOVED:
            if not record:
                with self._pending_guard:
                    self._vanish_seen.add((namespace, job))
                self.enqueue(namespace, job)
            elif self._record_final(namespace, job, rec.attempt, verdict.state,
                                    "vanished after it started; reporting it removed"):
                return verdict.state
            final = (self.store.get(job) or rec).final
            return final if final is not None else verdict.state
        return verdict.state

    # ------------------------------------------------------------------ the workers' side
    def _handle(self, key: WorkKey) -> Optional[float]:
        if key[0] == "job":
            return self.reconcile(key[1], key[2])
        if key[0] == "adopt":
            self.actions.adopt_legacy(key[1], key[2])
            return self.reconcile(key[1], key[2])
        if key[0] == "mounts":
            self.mounts.check(key[1])
        elif key[0] == "finalizers":
            return self.finalizers.sweep()
        return None

    def reconcile(self, namespace: str, job: str) -> Optional[float]:
        """Bring the job's pods in line with its record. Returns when to look again, if ever."""
        with self._pending_guard:
            departed = self._departed.pop((namespace, job), {})
            recreate = (namespace, job) in self._recreating
            vanished = (namespace, job) in self._vanish_seen
            self._vanish_seen.discard((namespace, job))
        while departed:
            name, pod = next(iter(departed.items()))
            try:
                self._reconcile_pod("DELETED", job, pod)
            except Exception:
                with self._pending_guard:   # kept, with those not yet judged, for the retry
                    kept = self._departed.setdefault((namespace, job), {})
                    for other, last in departed.items():
                        kept.setdefault(other, last)
                raise
            del departed[name]
        if recreate:
            self._recreate_vanished(namespace, job)
        if vanished and not self.cache.pods_for_job(namespace, job):
            rec = self.store.get(job)
            if rec is not None and rec.final is None and not rec.cancelled:
                self.vanished(namespace, job, rec)
        pods = self.cache.pods_for_job(namespace, job)
        again = [self._reconcile_pod("CURRENT", job, pod) for pod in pods]
        if self.actions.jobs is not None:   # job mode: Jobs left without a pod
            again.append(self.actions.jobs.sweep(
                namespace, job, self.store.get(job), self.cache.pods_for_job(namespace, job),
                self.clock(), self.settings.lifecycle.pod_retention))
        self._flush_reported(job)
        # The pods as this reconcile found them: whether a finalizer may go turns on the record
        # (read afresh), and the release key looks at the pod again when it runs. A pod made
        # meanwhile (a recreation) carries no finalizer that could be due.
        for pod in pods:
            if self.finalizers.due(pod):
                self.tidy.add(("release", namespace, str(meta(pod).get("name"))))
        return min((a for a in again if a is not None), default=None)

    def _recreate_vanished(self, namespace: str, job: str) -> None:
        """A status found the job's pod gone, or saw it disrupted (and the rules say: a new
        one). With any pod of the job in the cache, that pod's own classification decides
        (and a recreation then knows the pod it replaces)."""
        rec = self.store.get(job)
        if rec is not None and not rec.cancelled and rec.final is None and \
                not self.cache.pods_for_job(namespace, job):
            self._recreate_marked(namespace, job, None)
        else:
            with self._pending_guard:
                self._recreating.discard((namespace, job))

    def _flush_reported(self, job: str) -> None:
        with self._pending_guard:
            attempt = self._reported_pending.get(job)
        if attempt is None:
            return
        rec = self.store.get(job)
        if rec is not None and rec.attempt == attempt and rec.final is None:
            return   # answered from the classification; recorded by this reconcile soon
        if rec is not None and rec.attempt == attempt and not rec.reported:
            self.store.update(job, reported=True)
        with self._pending_guard:
            if self._reported_pending.get(job) == attempt:
                del self._reported_pending[job]

    def _reconcile_pod(self, kind: str, job: str, pod: dict) -> Optional[float]:
        m = meta(pod)
        namespace = str(m.get("namespace"))
        rec = self.store.get(job)
        if rec is not None and attempt_of(pod) != rec.attempt:
            if any(attempt_of(p) == rec.attempt
                   for p in self.cache.pods_for_job(namespace, job)):
                # superseded: its fate no longer matters, and a crash may have cost it the
                # delete that recreation or resubmission asked for
                if kind != "DELETED" and not m.get("deletionTimestamp"):
                    self.actions.delete_pod(pod)
                return None
            # the store names an attempt that was never created (a crash between recording
            # it and creating its pod): this pod is still the job's, as status treats it
        if kind == "DELETED":
            if rec is not None and rec.final is None and not rec.cancelled:
                # The last state of a pod a node controller deleted (node lost, preemption)
                # still says why: a disruption, so a new pod, not "removed".
                verdict = self.classify(pod, rec)
                if verdict.action is lifecycle.Action.RECREATE or disruption.stopped(verdict) \
                        or verdict.state.job_status == REMOVED:
                    self.act(pod, verdict, rec, inline=True)
                elif self.vanished(namespace, job, rec).job_status == IDLE:
                    self._recreate_marked(namespace, job, None)
            return None
        if rec is not None and rec.final is not None:
            if rec.cancelled:   # still force-delete a cancelled pod stuck terminating
                verdict = self.classify(pod, rec)
                if verdict.action is lifecycle.Action.DELETE:
                    self.act(pod, verdict, rec, inline=True)
            if attempt_of(pod) == rec.attempt:
                # a GAHP that stopped before deleting them: the Secrets go now
                self._drop_secrets(pod)
            return self._cleanup(pod, rec)
        return self.act(pod, self.classify(pod, rec), rec, inline=True)

    def act(self, pod: dict, verdict: lifecycle.Verdict, rec: Optional[JobRecord], *,
            inline: bool) -> Optional[float]:
        """Record what the verdict settles, then act on it: `inline` on the job's reconcile
        worker; otherwise (a status answer) only enqueue the job, whose reconcile will
        classify the pod again, record and act."""
        m = meta(pod)
        namespace, name = str(m.get("namespace")), str(m.get("name"))
        job = (m.get("labels") or {}).get(names.LABEL_JOB, name)
        if verdict.state.job_status == IDLE:
            self.mounts.maybe_check(pod)
        start = rec is not None and not rec.started and verdict.state.job_status == RUNNING
        removed = verdict.state.job_status == REMOVED and rec is not None and \
            rec.final is None and attempt_of(pod) == rec.attempt
        # an answer the pod will not stay to give again: a disruption the policy answers
        # without a new pod, or a hold on a pod being deleted (a Job past its deadline, whose
        # pod only kgahp's finalizer keeps): that state is the attempt's answer
        kept = rec is not None and rec.final is None and not rec.cancelled and \
            attempt_of(pod) == rec.attempt and (disruption.stopped(verdict) or (
                verdict.state.job_status == HELD and bool(m.get("deletionTimestamp"))))
        if not inline and (start or removed or kept):
            self.enqueue(namespace, job)
        elif start:
            self.store.update(job, started=True)
        elif removed and rec is not None:
            # deleted by someone else, or cancelled: that is the attempt's answer, now, before
            # the kubelet's last status makes the pod look like it ended on its own
            self._record_final(namespace, job, rec.attempt, verdict.state,
                               f"removed ({verdict.reason})", pod)
        elif kept and rec is not None:
            self._record_final(namespace, job, rec.attempt, verdict.state,
                               f"final: {verdict.reason}", pod)
        action = verdict.action
        if action is lifecycle.Action.NONE:
            return None
        if action is lifecycle.Action.COLLECT and rec is not None and rec.cancelled:
            return None   # a pod kgahp is deleting is never collected
        if action is lifecycle.Action.RECREATE and (rec is None or rec.cancelled):
            return None
        if not inline:
            if action is lifecycle.Action.RECREATE:
                with self._pending_guard:   # status shows IDLE meanwhile, not "vanished"
                    self._recreating.add((namespace, job))
            self.enqueue(namespace, job)
            return None
        if action is lifecycle.Action.COLLECT:
            return self._collect(pod, job, verdict.final or verdict.state)
        if action is lifecycle.Action.RECREATE:
            self._recreate_marked(namespace, job, pod)
        elif action is lifecycle.Action.DELETE:
            if verdict.state.job_status == IDLE and rec is not None and not rec.cancelled \
                    and not disruption.stopped(verdict):
                # node lost: the job deserves another pod. Recreate first, so the old pod's
                # DELETED event already belongs to a superseded attempt.
                self._recreate_marked(namespace, job, pod)
            self.actions.delete_pod(pod, grace_seconds=0)
        return None

    def _collect(self, pod: dict, job: str, final: JobState) -> Optional[float]:
        return collection.collect(self.actions, pod, job, final, self._record_final,
                                  self._cleanup)

    def _retention_left(self, pod: dict, rec: JobRecord) -> Optional[float]:
        return collection.retention_left(pod, rec, now=self.clock(),
                                         retention=self.settings.lifecycle.pod_retention)

    def _cleanup(self, pod: dict, rec: JobRecord) -> Optional[float]:
        """A finished pod's deletion: asked of the tidy queue once its retention is over;
        before that, when to look again."""
        left = self._retention_left(pod, rec)
        if left is not None and left <= 0:
            m = meta(pod)
            self.tidy.add(("retire", str(m.get("namespace")), str(m.get("name"))))
        return left if left is not None and left > 0 else None

    # ------------------------------------------------------------------ the tidy queue
    def _tidy(self, key: WorkKey) -> Optional[float]:
        """Level-based like `reconcile`: each key looks at the pod and the record as they are
        when it runs, so a key that is late, repeated or overtaken does nothing."""
        if key[0] == "secrets":
            self.actions.delete_secrets_of(key[1], key[2])
            return None
        pod = self.cache.get(key[1], key[2])
        if pod is None:
            return None
        if key[0] == "release":
            self.finalizers.release_if_done(pod)
        elif key[0] == "retire":
            rec = self.store.get(self.finalizers.job_of(pod))
            left = None if rec is None or rec.final is None else self._retention_left(pod, rec)
            if left is not None and left > 0:
                return left   # not due after all (the clock moved back): look again then
            if left is not None:
                self.actions.delete_pod(pod)
        return None

    def _record_final(self, namespace: str, job: str, attempt: int, state: JobState,
                      what: str, pod: Optional[dict] = None) -> bool:
        """Record the attempt's one final answer (the first recorded wins: the store refuses
        later ones) and let `pod`'s Secrets go: the finished pod no longer needs them."""
        if not self.store.record_final(job, attempt, state):
            log.debug("job %s/%s attempt %d already has its final answer; not recording %s",
                      namespace, job, attempt, what)
            return False
        log.info("job %s/%s %s: JobStatus %d exit %s signal %s hold %s", namespace, job, what,
                 state.job_status, state.exit_code, state.exit_signal, state.hold_code)
        if pod is not None and attempt_of(pod) == attempt:
            self._drop_secrets(pod)
        return True

    def _drop_secrets(self, pod: dict) -> None:
        if not self.actions.want_secrets_deleted(pod):
            return
        if self.settings.lifecycle.pod_retention <= 0:
            # The pod is deleted as soon as its result is in, and its Secrets with it (they
            # name it as their owner): deleting them first would add a request per job. They
            # stay noted, so a GAHP that stops before the pod is gone deletes them on its way.
            return
        m = meta(pod)
        self.tidy.add(("secrets", str(m.get("namespace")), workloads.attempt_name(pod)))

    def _recreate_marked(self, namespace: str, job: str, pod: Optional[dict]) -> None:
        """Recreate, showing the job as being moved (IDLE) to status meanwhile."""
        with self._pending_guard:
            self._recreating.add((namespace, job))
        try:
            recreate(self.actions, namespace, job, pod, record_final=self._record_final)
        finally:
            with self._pending_guard:
                self._recreating.discard((namespace, job))
