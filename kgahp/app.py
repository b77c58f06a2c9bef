"""The composition root: settings → client, cache, store, templates → Service, and the Handlers
the protocol server starts with while that graph is being built. The only place that builds the
object graph, so tests and the demo construct the product exactly as production does.

Threading model (one GAHP process)

Threads, and what each owns:
- main (1): reads stdin and writes every immediate reply (protocol/server.py).
- gahp-status-N (KGAHP_WORKERS/2, 2 to 8) and gahp-submit-N (KGAHP_WORKERS): run the
  verbs (service.py). Status reads the store and the cache and enqueues jobs that need action,
  never writing the store; submit, cancel and refresh-proxy act through `PodActions` under the
  job's stripe lock.
- startup (1, short-lived): builds the Service after the banner (`StartingService`).
- watch-<namespace> (1 per watched namespace): lists and watches pods into the `PodCache`.
  Its listener (`Reconciler.on_pod_event`) only notes a deleted pod's last state and enqueues
  the job: no store, no API.
- reconcile-N (KGAHP_RECONCILE_WORKERS): drain the `WorkQueue` (reconciler.py). Keys are
  ("job", ns, job) → `Reconciler.reconcile` (collect, recreate, force-delete, when a finished
  pod's deletion is due) and ("mounts", ns) → one read of the namespace's FailedMount events
  (mounts.py).
- tidy (1): drains the second `WorkQueue`, the rate-limited writes that only tidy up after an
  answer is recorded: ("release", ns, pod) → the tracking finalizer's removal, ("retire", ns,
  pod) → a finished pod's deletion after its retention, ("secrets", ns, pod) → its own Secrets.
  One worker, so a burst of them never holds the reconcile workers in the rate limiter.

Locks, and what each guards (none is held while taking another, except that a job's stripe
is held around that job's store and API calls):
- GahpServer's write lock: the protocol stream, one whole line at a time.
- `PodCache._lock`: the cache's maps (the watch thread writes, everyone reads).
- `JobStore._lock`: the SQLite connection and the in-memory records.
- `WorkQueue._cv`: the queue's ready, dirty, running and delayed keys; handlers run outside it.
- `PodActions._stripes[hash(job) % 1024]`: submit, cancel and recreation of one job (fixed
  memory, unlike a lock per job; enough stripes that 50 jobs in flight rarely share one).
- `PodActions._secrets_guard`: Secrets due for deletion and those already deleted.
- `Reconciler._pending_guard`: deleted pods' last states, jobs being recreated or found gone,
  and final answers a status gave that the store does not show yet.
- `MountChecks._guard`: FailedMount messages and when each namespace was last read.
- `Service._running_guard`: attempts whose RUNNING a status answer has shown.
- `TokenBucket._lock`: the client-side API rate limit.

A key of the work queue is never handled by two reconcile workers at once, so one job's
reconcile never races itself; a verb racing a reconcile of the same job is settled by the
store (the first final answer of an attempt wins) and by the job stripe.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Optional

from kgahp.config import Settings
from kgahp.errors import KgahpError
from kgahp.threads import start_daemon

if TYPE_CHECKING:
    from kgahp.service import Service

log = logging.getLogger(__name__)

STARTUP_WAIT = 120.0   # seconds a request waits for the service to be built


def build_service(settings: Settings, *, start: bool = True) -> Service:
    # heavy imports (the kubernetes client) here, not at module level: the banner goes first
    from kgahp import finalizers
    from kgahp.jobmode import JobMode
    from kgahp.kube.api import Kube, label_selector
    from kgahp.kube.cache import PodCache
    from kgahp.kube.connect import api_client
    from kgahp.podspec import names
    from kgahp.podspec.templates import load_templates
    from kgahp.service import Service
    from kgahp.store import JobStore
    from kgahp.workloads import uses_jobs

    client = api_client(settings.kube, pool_size=settings.server.workers
                        + settings.server.reconcile_workers + 5)   # + tidy, watches
    kube = Kube(client, settings.kube)
    instance = names.label_value(settings.instance)
    selector = label_selector({names.LABEL_MANAGED_BY: "kgahp", names.LABEL_INSTANCE: instance})
    cache = PodCache(kube, settings.kube.namespaces, selector, job_label=names.LABEL_JOB,
                     resync_interval=settings.lifecycle.resync_interval,
                     summarize=finalizers.summarize)
    store = JobStore(os.path.join(settings.state_dir, f"jobs-{instance}.sqlite"))
    purged = store.purge(time.time() - settings.lifecycle.result_retention)
    if purged:
        log.info("forgot %d results older than the retention", purged)
    legacy = None
    if settings.legacy_instance:
        # the store of an older kgahp that named every GAHP of this user alike: its jobs are
        # taken over one by one, when this GAHP's gridmanager asks about them
        path = os.path.join(settings.state_dir,
                            f"jobs-{names.label_value(settings.legacy_instance)}.sqlite")
        if os.path.exists(path):
            legacy = JobStore(path)
    templates = load_templates(settings.pod)
    service = Service(settings, kube, cache, store, templates, legacy_store=legacy)
    if uses_jobs(settings, templates):   # job mode: a second watch, of this instance's Jobs
        jobs = JobMode.build(kube, settings.kube.namespaces, selector,
                             resync_interval=settings.lifecycle.resync_interval)
        service.actions.jobs = jobs
        jobs.cache.add_listener(lambda kind, job: service.reconciler.on_job_event(kind, job))
        if start:
            jobs.start()
    if start:
        cache.start()
    return service


class StartingService:
    """The Handlers the server starts with: the banner must go out before anything slow (the
    kubernetes client import and kubeconfig loading take a while), and a broken configuration
    must become a clear error on every request (ping → resource down with the reason) rather
    than a GAHP that dies at start, which the gridmanager reports far less helpfully."""

    def __init__(self, settings: Settings, error: Optional[str] = None, *,
                 freeze_heap: bool = False) -> None:
        """`freeze_heap`: the process is the GAHP's own (not a test's or a tool's), so what
        the build leaves is its heap for good."""
        self.settings = settings
        self._freeze_heap = freeze_heap
        self._service: Optional[Service] = None
        self._error: Optional[str] = error
        self._ready = threading.Event()
        if error:
            self._ready.set()
        else:
            start_daemon(self._build, "startup")

    def _build(self) -> None:
        try:
            self._service = build_service(self.settings)
            if self._freeze_heap:
                # What exists now (modules, the client, settings, templates: ~50,000
                # objects) lives as long as the process; frozen, it is left out of every full
                # garbage collection, which then walks only what came after (at 100,000 jobs
                # a restart's full collections: 1.4 s in all -> 0.15 s).
                gc.freeze()
        except KgahpError as exc:
            self._error = str(exc)
            log.error("kgahp cannot work: %s", exc)
        except Exception as exc:  # never die at start; say why on every request instead
            log.exception("kgahp failed to start")
            self._error = f"kgahp failed to start: {exc}"
        finally:
            self._ready.set()

    def service(self) -> Optional[Service]:
        self._ready.wait(STARTUP_WAIT)
        return self._service

    def _unavailable(self) -> str:
        return self._error or "kgahp is still starting"

    def ping(self, batch_type: str) -> tuple[int, str]:
        svc = self.service()
        return svc.ping(batch_type) if svc else (1, self._unavailable())

    def submit(self, ad_text: str) -> tuple[int, str, Optional[str]]:
        svc = self.service()
        return svc.submit(ad_text) if svc else (1, self._unavailable(), None)

    def status(self, job_id: str) -> tuple[int, str, int, Optional[str]]:
        svc = self.service()
        return svc.status(job_id) if svc else (1, self._unavailable(), 0, None)

    def status_now(self, job_id: str) -> Optional[tuple[int, str, int, Optional[str]]]:
        # never waits for the start: until the service is built, a worker answers
        svc = self._service if self._ready.is_set() else None
        return svc.status_now(job_id) if svc else None

    def cancel(self, job_id: str) -> tuple[int, str]:
        svc = self.service()
        return svc.cancel(job_id) if svc else (1, self._unavailable())

    def refresh_proxy(self, job_id: str, proxy_path: str) -> tuple[int, str]:
        svc = self.service()
        return svc.refresh_proxy(job_id, proxy_path) if svc else (1, self._unavailable())

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
