"""Wiring: settings → client, cache, store, templates → Service. The only place that builds the
object graph, so tests and the demo construct the product exactly as production does."""

from __future__ import annotations

import logging
import os
import time

from kgahp.config import Settings
from kgahp.kube.api import Kube, label_selector
from kgahp.kube.cache import PodCache
from kgahp.kube.connect import api_client
from kgahp.podspec import names
from kgahp.podspec.templates import load_templates
from kgahp.service import Service
from kgahp.store import JobStore

log = logging.getLogger(__name__)


def build_service(settings: Settings, *, start: bool = True) -> Service:
    client = api_client(settings.kube, pool_size=settings.server.workers + 8)
    kube = Kube(client, settings.kube)
    instance = names.label_value(settings.instance)
    selector = label_selector({names.LABEL_MANAGED_BY: "kgahp", names.LABEL_INSTANCE: instance})
    cache = PodCache(kube, settings.kube.namespaces, selector, job_label=names.LABEL_JOB,
                     resync_interval=settings.lifecycle.resync_interval)
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
    if start:
        cache.start()
    return service
