"""Shared helpers for the podspec tests: Kubernetes' own validation rules, written out.

The regular expressions are the ones the API server quotes in its 422/400 answers
(tests/data/k8s-recordings-v1.28/03*, and v1.36's relaxed environment variable names, 03i2), so a
pod that passes here is not refused for syntax.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient

from kgahp.config import Settings, settings_from_mapping
from kgahp.model import JobRequest
from kgahp.podspec.templates import DEFAULT_BASE, Templates, templates_from_data

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
EXAMPLES = REPO / "examples"

JOB_DIR = "home_bl_ce.example.org_9619_ce.example.org_1234.0_1767225600"

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
# v1.36: printable ASCII but '=', and not '.', '..' or '..'-prefixed
ENV_NAME = re.compile(r"^(?!\.\.?$)(?!\.\.)[ -<>-~]+$")
# the API's quantity regex (03e), narrowed: no sign, no exponent (kgahp never writes them)
QUANTITY = re.compile(r"^([0-9]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_UNITS = {None: 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def request(**overrides: Any) -> JobRequest:
    fields: dict[str, Any] = {"job_directory": JOB_DIR, "cmd": "/bin/echo", "iwd": "/home/u"}
    fields.update(overrides)
    return JobRequest(**fields)


def settings(user: str = "alice", **knobs: str) -> Settings:
    values = {"DEFAULT_IMAGE": "busybox:1.36"}
    values.update(knobs)
    return settings_from_mapping(values, user=user)


def plain_templates() -> Templates:
    return templates_from_data(DEFAULT_BASE, {})


def with_pod(s: Settings, **fields: Any) -> Settings:
    return replace(s, pod=replace(s.pod, **fields))


def quantity_value(text: str) -> Decimal:
    match = QUANTITY.fullmatch(text)
    assert match, f"quantity {text!r} is not in the API's plain form"
    return Decimal(match.group(1)) * Decimal(_UNITS[match.group(2)])


def job_container(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == "job")


def assert_valid_pod(pod: dict[str, Any]) -> None:
    """Fail with the field at fault if the API server would refuse this pod for its syntax."""
    meta = pod["metadata"]
    assert pod["apiVersion"] == "v1" and pod["kind"] == "Pod"
    assert len(meta["name"]) <= 63 and DNS_LABEL.fullmatch(meta["name"]), meta["name"]
    assert DNS_LABEL.fullmatch(meta["namespace"]), meta["namespace"]
    for key, value in meta.get("labels", {}).items():
        name = key.split("/")[-1]
        assert len(name) <= 63 and LABEL_NAME.fullmatch(name), key
        assert isinstance(value, str) and len(value) <= 63, (key, value)
        assert LABEL_VALUE.fullmatch(value), (key, value)
    for value in meta.get("annotations", {}).values():
        assert isinstance(value, str)
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    if "activeDeadlineSeconds" in spec:
        assert 1 <= spec["activeDeadlineSeconds"] <= 2**31 - 1
    names = [c["name"] for kind in ("initContainers", "containers")
             for c in spec.get(kind, [])]
    assert len(names) == len(set(names)), names
    assert spec["containers"], "a pod needs a container"
    for container in spec["containers"]:
        assert DNS_LABEL.fullmatch(container["name"])
        assert container.get("image"), f"container {container['name']} has no image"
        for entry in container.get("env", []):
            assert ENV_NAME.fullmatch(entry["name"]), entry["name"]
        resources = container.get("resources", {})
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        for amount in [*requests.values(), *limits.values()]:
            quantity_value(amount)
        for key, amount in requests.items():
            if key in limits:
                assert quantity_value(amount) <= quantity_value(limits[key]), key
    json.dumps(pod, allow_nan=False)   # what the client will send
    typed = _deserialize(pod)
    assert typed.spec.containers[0].name


def _deserialize(pod: dict[str, Any]) -> Any:
    """The official client's own model of the pod: refuses missing required fields."""
    return ApiClient().deserialize(json.dumps(pod), "V1Pod", "application/json")
