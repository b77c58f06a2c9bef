"""The admin's pod template and per-queue configuration, read once at startup.

`KGAHP_POD_TEMPLATE` is a YAML Pod (apiVersion/kind optional) every job pod starts from; empty
means a minimal pod with one container named `job`. `KGAHP_QUEUE_CONFIG` is a YAML mapping:

    queues:
      gpu:
        template: {spec: {tolerations: [...]}}   # inline pod overlay, or a path to a YAML file
        namespace: gpu-jobs
        priorityClassName: batch-high
        kueueQueue: gpu-local               # Kueue LocalQueue (kueue.x-k8s.io/queue-name)
        kueuePriorityClass: batch-urgent    # WorkloadPriorityClass (kueue.x-k8s.io/priority-class)
        disruptionPolicy: hold              # overrides KGAHP_DISRUPTION_POLICY for this queue
        workload: job                       # pod (KGAHP_WORKLOAD's default) or job (batch/v1)
        multikueue: false                   # true: Jobs carry managedBy kueue.x-k8s.io/multikueue
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

import yaml

from kgahp.config import PREFIX, PodSettings
from kgahp.errors import ConfigError
from kgahp.k8snames import is_dns_label, is_dns_subdomain, is_label_value

MAIN_CONTAINER = "job"
# Init containers named so are kgahp's own helpers (the stage-in copy): budgeted by the
# KGAHP_HELPER_* knobs, never by the job's request. Templates and patches may not use the prefix.
HELPER_PREFIX = "kgahp-"
DEFAULT_BASE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {},
    "spec": {"containers": [{"name": MAIN_CONTAINER}]},
}
_POD_KEYS = frozenset({"apiVersion", "kind", "metadata", "spec"})
_QUEUE_KEYS = frozenset({"template", "namespace", "priorityClassName", "kueueQueue",
                          "kueuePriorityClass", "disruptionPolicy", "workload",
                          "multikueue"})
DISRUPTION_POLICIES = ("recreate", "hold", "remove")
WORKLOADS = ("pod", "job")


@dataclass(frozen=True)
class QueueConfig:
    template: Optional[dict[str, Any]] = None     # pod-shaped overlay merged onto the base
    namespace: Optional[str] = None
    priority_class: Optional[str] = None
    kueue_queue: Optional[str] = None
    kueue_priority_class: Optional[str] = None
    disruption_policy: Optional[str] = None       # recreate|hold|remove; None: the knob's
    workload: Optional[str] = None     # "pod" or "job"; None: KGAHP_WORKLOAD
    multikueue: bool = False           # Job mode, dispatched by MultiKueue



@dataclass(frozen=True)
class Templates:
    base: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_BASE))
    queues: dict[str, QueueConfig] = field(default_factory=dict)


def load_templates(pod: PodSettings) -> Templates:
    """Read and check the admin's files; ConfigError names the file and the problem."""
    base = DEFAULT_BASE
    if pod.pod_template.strip():
        base = _read_yaml(pod.pod_template, f"{PREFIX}POD_TEMPLATE")
        if base is None:
            base = DEFAULT_BASE
        _check_pod_shape(base, pod.pod_template, is_base=True)
    queues: dict[str, QueueConfig] = {}
    if pod.queue_config.strip():
        queues = _load_queues(pod.queue_config)
    return templates_from_data(base, queues)


def templates_from_data(base: dict[str, Any], queues: dict[str, QueueConfig]) -> Templates:
    """Templates from already-parsed data (tests, `kgahp render`): the base gets its `job`."""
    _check_pod_shape(base, "pod template", is_base=True)
    spec = dict(base.get("spec") or {})
    containers = list(spec.get("containers") or [])
    if not any(c.get("name") == MAIN_CONTAINER for c in containers):
        containers.insert(0, {"name": MAIN_CONTAINER})
    spec["containers"] = containers
    clean = {"apiVersion": "v1", "kind": "Pod", **base, "spec": spec}
    return Templates(base=clean, queues=dict(queues))


def parse_queue_config(data: Any, source: str) -> dict[str, QueueConfig]:
    """The `queues:` mapping, checked; relative template paths are read beside `source`."""
    if data is None:
        return {}
    if not isinstance(data, dict) or set(data) - {"queues"}:
        raise ConfigError(f"{source}: expected a mapping with one key 'queues'")
    raw_queues = data.get("queues") or {}
    if not isinstance(raw_queues, dict):
        raise ConfigError(f"{source}: 'queues' must map queue names to settings")
    out: dict[str, QueueConfig] = {}
    for name, entry in raw_queues.items():
        out[str(name)] = _queue_entry(str(name), entry or {}, source)
    return out


def _load_queues(path: str) -> dict[str, QueueConfig]:
    return parse_queue_config(_read_yaml(path, f"{PREFIX}QUEUE_CONFIG"), path)


def _queue_entry(name: str, entry: Any, source: str) -> QueueConfig:
    where = f"{source}: queue {name!r}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping")
    unknown = sorted(set(entry) - _QUEUE_KEYS)
    if unknown:
        raise ConfigError(f"{where} has unknown keys {', '.join(unknown)} "
                          f"(allowed: {', '.join(sorted(_QUEUE_KEYS))})")
    template = entry.get("template")
    if isinstance(template, str):
        path = template if os.path.isabs(template) else os.path.join(
            os.path.dirname(os.path.abspath(source)), template)
        template = _read_yaml(path, f"{where} template")
    if template is not None:
        _check_pod_shape(template, f"{where} template", is_base=False)
    namespace = _opt_str(entry, "namespace", where)
    if namespace is not None and not is_dns_label(namespace):
        raise ConfigError(f"{where}: namespace {namespace!r} is not a valid namespace name")
    priority = _opt_str(entry, "priorityClassName", where)
    if priority is not None and not is_dns_subdomain(priority):
        raise ConfigError(f"{where}: priorityClassName {priority!r} is not a valid name")
    kueue = _opt_str(entry, "kueueQueue", where)
    if kueue is not None and not (kueue and is_label_value(kueue)):
        raise ConfigError(f"{where}: kueueQueue {kueue!r} is not a valid label value")
    kueue_priority = _opt_str(entry, "kueuePriorityClass", where)
    if kueue_priority is not None:
        if kueue is None:
            raise ConfigError(f"{where}: kueuePriorityClass needs kueueQueue (Kueue reads the "
                              "priority class only of pods it manages)")
        if not (kueue_priority and is_label_value(kueue_priority)):
            raise ConfigError(f"{where}: kueuePriorityClass {kueue_priority!r} is not a valid "
                              "label value")
    disruption = _opt_str(entry, "disruptionPolicy", where)
    if disruption is not None and disruption.strip().lower() not in DISRUPTION_POLICIES:
        raise ConfigError(f"{where}: disruptionPolicy {disruption!r} is not one of "
                          f"{', '.join(DISRUPTION_POLICIES)}")
    workload = _opt_str(entry, "workload", where)
    if workload is not None and workload not in WORKLOADS:
        raise ConfigError(f"{where}: workload {workload!r} is neither 'pod' nor 'job'")
    multikueue = entry.get("multikueue", False)
    if not isinstance(multikueue, bool):
        raise ConfigError(f"{where}: multikueue must be true or false")
    if multikueue:
        if workload == "pod":
            raise ConfigError(f"{where}: multikueue dispatches batch/v1 Jobs; it needs "
                              "workload: job")
        if kueue is None:
            raise ConfigError(f"{where}: multikueue needs kueueQueue (MultiKueue takes only "
                              "Jobs queued in a LocalQueue)")
        workload = "job"
    return QueueConfig(template=template, namespace=namespace, priority_class=priority,
                       kueue_queue=kueue, kueue_priority_class=kueue_priority,
                       workload=workload, multikueue=multikueue,
                       disruption_policy=disruption.strip().lower() if disruption else None)


def _opt_str(entry: dict[str, Any], key: str, where: str) -> Optional[str]:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string")
    return value


def _read_yaml(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{what} {path} is not valid YAML{at}") from None


def _check_pod_shape(doc: Any, source: str, *, is_base: bool) -> None:
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a YAML mapping shaped like a Pod")
    unknown = sorted(set(doc) - _POD_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unexpected top-level keys {', '.join(unknown)} "
                          "(a Pod has apiVersion, kind, metadata, spec)")
    if doc.get("kind", "Pod") != "Pod":
        raise ConfigError(f"{source}: kind is {doc.get('kind')!r}, expected Pod")
    for key in ("metadata", "spec"):
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            raise ConfigError(f"{source}: {key} must be a mapping")
    spec = doc.get("spec") or {}
    for list_key in ("containers", "initContainers"):
        items = spec.get(list_key)
        if items is None:
            continue
        if not isinstance(items, list) or not all(
                isinstance(c, dict) and isinstance(c.get("name"), str) for c in items):
            raise ConfigError(f"{source}: spec.{list_key} must be a list of named containers")
    if is_base and spec.get("restartPolicy") not in (None, "Never"):
        raise ConfigError(f"{source}: restartPolicy must be Never (kgahp restarts jobs itself)")
