"""A watch-fed cache of the pods this GAHP instance manages: status is answered from here.

One thread per namespace lists the pods carrying this instance's label, then watches from the
list's resourceVersion (with bookmarks), relists on 410 Gone and every resync interval, and backs
off while the API is unreachable, all the while serving the last known state.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections.abc import Hashable, Iterable, Iterator
from typing import Any, Callable, Optional

from kgahp.errors import ApiError, api_error
from kgahp.kube import jsonio
from kgahp.kube.api import Kube
from kgahp.threads import start_daemon

log = logging.getLogger(__name__)

STARTUP_SYNC_WAIT = 15.0    # seconds a reader waits for its namespace's first list to move
STARTUP_SYNC_BOUND = 60.0   # ... and at most in all, before it reads the API directly

Listener = Callable[[str, dict], None]   # (event type, pod); types ADDED/MODIFIED/DELETED/SYNC
# another resource (job mode's batch/v1 Jobs): list(ns, selector, retry=, transform=) ->
# (transformed items, rv) and watch(ns, selector, rv, timeout) -> events, as Kube.list_pods /
# Kube.watch_pods
Lister = Callable[..., tuple[list[Any], str]]
Watcher = Callable[[str, str, str, int], Iterable[dict]]


def _rv(pod: dict) -> int:
    try:
        return int((pod.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


_CONTAINER_KEEP = ("name", "image", "resources")


def slim(pod: dict) -> dict:
    """The part of a pod kgahp reads (identity, resources, status). A full pod is 5-10 KB of
    JSON (managedFields, the wrapper script, env, volumes); 10,000 of them would dominate the
    GAHP's memory, so the cache keeps only this."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    return {
        "metadata": {k: v for k, v in meta.items() if k != "managedFields"},
        "spec": {
            "nodeName": spec.get("nodeName"),
            "activeDeadlineSeconds": spec.get("activeDeadlineSeconds"),
            "terminationGracePeriodSeconds": spec.get("terminationGracePeriodSeconds"),
            "containers": [{k: c[k] for k in _CONTAINER_KEEP if k in c}
                           for c in spec.get("containers") or []],
            "initContainers": [{k: c[k] for k in _CONTAINER_KEEP if k in c}
                               for c in spec.get("initContainers") or []],
            # which Secrets it mounts: a finished job's own go as soon as its result is in
            "volumes": [{"name": v.get("name"), "secret": {
                "secretName": (v.get("secret") or {}).get("secretName")}}
                for v in spec.get("volumes") or []
                if isinstance(v, dict) and isinstance(v.get("secret"), dict)],
        },
        "status": pod.get("status") or {},
    }


# A cached pod: its resourceVersion (compared on every update), its slim form as compact JSON,
# its job label ("" when none) and its summary (what the cache's `summarize` says of it, kept so
# that a pass over every pod needs no decoding). Measured with tracemalloc on a running pod as
# kgahp renders it: the slim dict is ~7 KB of Python objects, its JSON ~2 KB, decoded again in
# ~5 us when read (a status reads one).
Entry = tuple[int, bytes, str, Hashable]
# A listed object as its page arrives: its key and its entry. Packed at once, a namespace's list
# holds ~2 KB per pod until it is complete, not a slim dict (~7 KB): at 10,000 pods in 4
# namespaces listed together that was a ~70 MB high-water mark, which the allocator keeps as
# RSS after the dicts are gone.
Listed = tuple[tuple[str, str], Entry]


def _unpack(entry: Entry) -> dict:
    pod: dict = jsonio.loads(entry[1])
    return pod


def no_summary(pod: dict) -> None:
    return None


def _key(pod: dict) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class PodCache:
    def __init__(self, kube: Kube, namespaces: Iterable[str], selector: str, *,
                 job_label: str, resync_interval: float = 300.0,
                 watch_timeout: int = 290, lister: Optional[Lister] = None,
                 watcher: Optional[Watcher] = None,
                 slimmer: Callable[[dict], dict] = slim,
                 summarize: Callable[[dict], Hashable] = no_summary, kind: str = "pod") -> None:
        self.kube = kube
        self._list: Lister = lister or kube.list_pods
        self._watch_fn: Watcher = watcher or kube.watch_pods
        self._slim = slimmer
        self.summarize = summarize
        # equal summaries share one object: a few distinct values among 100,000 pods
        self._summary_of: dict[Hashable, Hashable] = {}
        self.kind = kind
        self.namespaces = tuple(namespaces)
        self.selector = selector
        self.job_label = job_label
        self.resync_interval = resync_interval
        self.watch_timeout = watch_timeout
        self._pods: dict[tuple[str, str], Entry] = {}
        # (namespace, job) -> names of its pods. Tuples, not sets: a tuple of strings is
        # untracked by the cyclic garbage collector, and a job has one pod (rarely a few), so
        # rebuilding it on a change costs nothing while 100,000 sets made every full
        # collection longer.
        self._by_job: dict[tuple[str, str], tuple[str, ...]] = {}
        self._lock = threading.Lock()
        self._synced = {ns: threading.Event() for ns in self.namespaces}
        self._progress = dict.fromkeys(self.namespaces, 0.0)   # when a pod of a list last came
        self._healthy = dict.fromkeys(self.namespaces, False)
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # The version of the last event received, per namespace: a stream cut mid-way must
        # resume from there, not replay (and be cut at the same spot) forever.
        self._resume: dict[str, Optional[str]] = {}

    # ---- lifecycle
    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def start(self) -> None:
        for ns in self.namespaces:
            name = f"watch-{ns}" if self.kind == "pod" else f"watch-{self.kind}-{ns}"
            self._threads.append(start_daemon(self._run, name, (ns,)))

    def stop(self) -> None:
        self._stop.set()

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(ev.wait(max(0.0, deadline - time.monotonic()))
                   for ev in self._synced.values())

    def wait_namespace_synced(self, namespace: str, stall: float = STARTUP_SYNC_WAIT,
                              bound: float = STARTUP_SYNC_BOUND) -> bool:
        """Wait for the first list of one namespace while it makes progress: give up once no
        pod of it has arrived for `stall` seconds, or after `bound` seconds in all. A big
        namespace's list (200 pages at 100,000 jobs, paced by QPS) takes longer than any
        fixed wait, and waiting costs nothing while it moves. A cache that is not running
        will not list: no wait."""
        ev = self._synced.get(namespace)
        if ev is None:
            return False
        if not self._threads or self._stop.is_set():
            return ev.is_set()
        start = time.monotonic()
        while True:
            last = max(start, self._progress.get(namespace, 0.0))
            left = min(last + stall, start + bound) - time.monotonic()
            if left <= 0:
                return ev.is_set()
            if ev.wait(left):
                return True

    def is_synced(self, namespace: str) -> bool:
        ev = self._synced.get(namespace)
        return bool(ev and ev.is_set())

    def is_healthy(self, namespace: str) -> bool:
        return self._healthy.get(namespace, False)

    # ---- reads (the status hot path: dictionary lookups only)
    # Each read decodes its own copy of the cached pod (a caller may keep or change it).
    def get(self, namespace: str, name: str) -> Optional[dict]:
        with self._lock:
            entry = self._pods.get((namespace, name))
        return None if entry is None else _unpack(entry)

    def pods_for_job(self, namespace: str, job: str) -> list[dict]:
        with self._lock:
            names = self._by_job.get((namespace, job), ())
            entries = [self._pods[(namespace, n)] for n in names if (namespace, n) in self._pods]
        return [_unpack(e) for e in entries]

    def summaries(self) -> Iterator[tuple[str, str, str, Hashable]]:
        """(namespace, name, job, summary) of every cached pod, none decoded. The finalizer
        sweep looks at every pod every two minutes: decoding them all took 0.7 s of CPU at
        100,000 jobs, holding the interpreter lock in 5 ms slices that status answers waited
        behind."""
        with self._lock:
            items = list(self._pods.items())
        return ((key[0], key[1], entry[2], entry[3]) for key, entry in items)

    def __len__(self) -> int:
        return len(self._pods)

    # ---- writes
    def note(self, pod: dict) -> None:
        """Record a pod seen in a direct API answer (e.g. just created), unless the cache has
        a newer version of it."""
        self._put(pod)

    def _put(self, pod: dict) -> bool:
        """Keep `pod` unless a newer version is cached; True unless it was older. The version
        already cached (a created pod's ADDED event, an unchanged pod in a relist) is kept
        as it is: the same resourceVersion is the same object."""
        key = _key(pod)
        if not self._newer(key, _rv(pod)):
            return False
        return self._store(key, self._pack(self._slim(pod)))

    def _newer(self, key: tuple[str, str], rv: int) -> bool:
        with self._lock:
            old = self._pods.get(key)
            return old is None or old[0] <= rv

    def _pack(self, pod: dict) -> Entry:
        """A slim pod as the cache keeps it. The job name is interned, so the entry and the
        job index share one string."""
        job = sys.intern(str(((pod.get("metadata") or {}).get("labels") or {}).get(
            self.job_label) or ""))
        summary = self.summarize(pod)
        summary = self._summary_of.setdefault(summary, summary)
        # bytes(...) copies: orjson's result keeps its over-allocated buffer (~4x the JSON)
        return _rv(pod), bytes(memoryview(jsonio.dumps(pod))), job, summary

    def _store(self, key: tuple[str, str], entry: Entry) -> bool:
        """Keep a packed pod unless a newer version is cached (see `_put`)."""
        rv, job = entry[0], entry[2]
        with self._lock:
            old = self._pods.get(key)
            if old is not None:
                old_rv = old[0]
                if old_rv > rv:
                    return False
                if old_rv == rv != 0:
                    return True
            self._pods[key] = entry
            if job:
                names = self._by_job.get((key[0], job), ())
                if key[1] not in names:
                    self._by_job[(key[0], job)] = (*names, key[1])
            return True

    def _drop(self, pod: dict) -> None:
        key = _key(pod)
        with self._lock:
            entry = self._pods.pop(key, None)
            if entry is None:
                return
            job = entry[2]
            names = self._by_job.get((key[0], job), ())
            if key[1] in names:
                rest = tuple(n for n in names if n != key[1])
                if rest:
                    self._by_job[(key[0], job)] = rest
                else:
                    del self._by_job[(key[0], job)]

    def _emit(self, kind: str, pod: dict) -> None:
        for fn in self._listeners:
            try:
                fn(kind, pod)
            except Exception:  # a listener bug must not kill the watch
                log.exception("pod listener failed for %s", _key(pod))

    def _replace(self, namespace: str, items: list[Listed], list_rv: str) -> None:
        fresh = {key for key, _ in items}
        try:
            snapshot = int(list_rv)
        except ValueError:
            snapshot = 0
        with self._lock:
            # A pod noted after the list's snapshot (kgahp just created it) is missing from the
            # list because it is newer, not because it is gone: dropping it would report a live
            # pod as vanished and make a second one. The watch from list_rv brings its events.
            gone = [_unpack(e) for k, e in self._pods.items() if k[0] == namespace
                    and k not in fresh and not (snapshot and e[0] > snapshot)]
        for pod in gone:
            self._drop(pod)
            self._emit("DELETED", pod)
        # all in before any listener runs: a listener comparing a job's pods must see them all
        changed = [entry for key, entry in items if self._store(key, entry)]
        for entry in changed:
            self._emit("SYNC", _unpack(entry))

    def _lister(self, namespace: str) -> Callable[[dict], Listed]:
        """Slims and packs each listed pod as its page arrives, and notes that the list is
        moving."""
        def listed(pod: dict) -> Listed:
            self._progress[namespace] = time.monotonic()
            slimmed = self._slim(pod)
            return _key(slimmed), self._pack(slimmed)
        return listed

    # ---- the per-namespace loop
    def _run(self, namespace: str) -> None:
        rv: Optional[str] = None
        last_list = 0.0
        failures = 0
        while not self._stop.is_set():
            try:
                if rv is None:
                    items, rv = self._list(namespace, self.selector, retry=False,
                                           transform=self._lister(namespace))
                    self._replace(namespace, items, str(rv or ""))
                    listed = len(items)
                    del items       # packed in the cache now: not held while watching
                    last_list = time.monotonic()
                    self._synced[namespace].set()
                    if not self._healthy[namespace]:
                        log.info("%s cache for %s in sync: %d %ss at resourceVersion %s",
                                 self.kind, namespace, listed, self.kind, rv)
                    self._healthy[namespace] = True
                self._resume[namespace] = rv
                rv = self._watch(namespace, rv)
                failures = 0
                if time.monotonic() - last_list > self.resync_interval:
                    rv = None
            except ApiError as exc:
                if exc.status == 410:
                    log.info("watch of %s expired (410 Gone); relisting", namespace)
                    rv = None
                    continue
                resume = self._resume.get(namespace)
                if rv is not None and resume is not None and resume != rv:
                    rv = resume        # the stream broke after some events: keep them
                    failures = 0       # ... and it was progress, not a failing server
                failures += 1
                if self._healthy[namespace]:
                    log.warning("Kubernetes API trouble for %s (%s); answering status from "
                                "the cache until it recovers", namespace, exc)
                self._healthy[namespace] = False
                # full jitter, capped: many GAHPs must not reconnect in lockstep
                self._stop.wait(random.uniform(0, min(30.0, 0.5 * 2 ** min(failures, 6))))
            except Exception:
                log.exception("unexpected error in the watch of %s; relisting", namespace)
                rv = None
                self._stop.wait(1.0)

    def _watch(self, namespace: str, rv: str) -> Optional[str]:
        """Follow one watch stream; return the version to resume from (None = relist)."""
        # jittered so many GAHPs do not reconnect together; never 0 (= no timeout at all)
        timeout = max(1, int(self.watch_timeout * random.uniform(0.9, 1.0)))
        for event in self._watch_fn(namespace, self.selector, rv, timeout):
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                code = obj.get("code")
                if code == 410:
                    raise ApiError("watch expired", 410, "Expired")
                raise api_error(f"watch error: {obj.get('message')}", int(code or 0),
                                str(obj.get("reason") or ""))
            new_rv = (obj.get("metadata") or {}).get("resourceVersion")
            if kind == "DELETED":
                self._drop(obj)
                self._emit("DELETED", obj)
            elif kind in ("ADDED", "MODIFIED"):
                if self._put(obj):
                    self._emit(kind, obj)
            if new_rv:   # only once the event is applied is it safe to resume after it
                rv = new_rv
                self._resume[namespace] = rv
            if self._stop.is_set():
                break
        self._healthy[namespace] = True
        return rv
