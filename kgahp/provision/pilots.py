"""A pilot's pod, built by the GAHP's own path: a JobRequest for the shape goes through
kgahp.manifests.assemble (policy check, base template, the queue's overlay, the request's
values, security defaults, the final policy check). Every rule an admin sets for jobs applies to
pilots too. Pure.

The pilot needs no sandbox: it is built with KGAHP_TRANSFER_MODE = none, so its command runs as
given. Its startd learns its shape through `_CONDOR_` variables: the slot size, the shape's
START, STARTD_NOCLAIM_SHUTDOWN (it leaves on its own when nothing claims it), and the
attributes KgahpPilotShape and K8sPodName, by which the provisioner finds its ads.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import replace
from typing import Any

import classad2

from kgahp.config import Settings
from kgahp.manifests import ANN_TRANSFER, assemble
from kgahp.model import JobRequest
from kgahp.podspec import names
from kgahp.podspec.policy import choose_namespace
from kgahp.podspec.templates import Templates
from kgahp.provision.machine import SHAPE_ATTRIBUTE
from kgahp.provision.shapes import Shape
from kgahp.provision.supply import LABEL_SHAPE, POD_NAME_ATTRIBUTE

LABEL_ROLE = "kgahp.htcondor.org/role"
ROLE_PILOT = "pilot"


def pilot_settings(settings: Settings) -> Settings:
    """The GAHP's settings as a pilot is built with them: this provisioner's instance label
    (so no GAHP ever adopts a pilot), no file transfer, and no tracking finalizer (no GAHP
    collects a pilot, so nothing would ever remove it)."""
    return replace(settings,
                   kube=replace(settings.kube, instance=settings.provision.instance),
                   transfer=replace(settings.transfer, mode="none"),
                   lifecycle=replace(settings.lifecycle, tracking_finalizer=False))


def selector(settings: Settings) -> dict[str, str]:
    """The labels every pilot pod of this provisioner carries (its list selector)."""
    return {names.LABEL_MANAGED_BY: names.MANAGED_BY_VALUE,
            names.LABEL_INSTANCE: names.label_value(settings.provision.instance),
            LABEL_ROLE: ROLE_PILOT}


def _classad_literal(value: object) -> str:
    """A Python value as ClassAd literal text (classad2 does the quoting and number format)."""
    ad = classad2.ClassAd()
    ad["v"] = value
    return str(ad.lookup("v"))


def startd_environment(shape: Shape, pod_name: str, noclaim_shutdown: int
                       ) -> list[tuple[str, str]]:
    """HTCondor configuration for the pilot's startd, as _CONDOR_ environment variables."""
    attributes = [(SHAPE_ATTRIBUTE, _classad_literal(shape.name)),
                  (POD_NAME_ATTRIBUTE, _classad_literal(pod_name))]
    attributes += [(name, _classad_literal(value)) for name, value in shape.attributes]
    env = [
        ("_CONDOR_NUM_CPUS", str(max(1, math.ceil(shape.cpus)))),
        ("_CONDOR_MEMORY", str(shape.memory_mib)),
        ("_CONDOR_START", shape.start),
        ("_CONDOR_STARTD_NOCLAIM_SHUTDOWN", str(noclaim_shutdown)),
        ("_CONDOR_STARTD_ATTRS",
         "$(STARTD_ATTRS) " + " ".join(name for name, _ in attributes)),
    ]
    env += [(f"_CONDOR_{name}", text) for name, text in attributes]
    return env


def pilot_request(shape: Shape, settings: Settings, suffix: str) -> JobRequest:
    """The JobRequest a pilot of `shape` is built from; `suffix` makes its name unique."""
    job_directory = f"pilot_{settings.provision.instance}_{shape.name}_{suffix}"
    pod_name = names.pod_name(names.job_base_name(job_directory, settings.pod.pod_name_prefix),
                              0)
    environment = tuple(startd_environment(shape, pod_name,
                                           settings.provision.noclaim_shutdown))
    return JobRequest(
        job_directory=job_directory, cmd=shape.command[0], iwd="/", stage_cmd=False,
        arguments=tuple(shape.command[1:]),
        environment=environment + tuple(shape.environment),
        image=shape.image, cpus=shape.cpus, cpus_explicit=True,
        memory_mib=shape.memory_mib, disk_kib=shape.disk_mib * 1024, gpus=shape.gpus,
        gpu_model=shape.gpu_model, queue=shape.queue,
    )


def new_suffix() -> str:
    return secrets.token_hex(4)


def pilot_pod(shape: Shape, settings: Settings, templates: Templates, *,
              suffix: str) -> dict[str, Any]:
    """The pod of one new pilot (raises what assemble raises: PolicyError, ConfigError, ...)."""
    own = pilot_settings(settings)
    made = assemble(pilot_request(shape, own, suffix), own, templates, attempt=0, restarts=0,
                    bundle=None, creds={})
    made.pod["metadata"].get("annotations", {}).pop(ANN_TRANSFER, None)   # nothing to fetch
    labels = made.pod["metadata"].setdefault("labels", {})
    labels.update(selector(settings))
    labels[LABEL_SHAPE] = shape.name
    return made.pod


def pilot_namespace(shape: Shape, settings: Settings, templates: Templates) -> str:
    own = pilot_settings(settings)
    return choose_namespace(pilot_request(shape, own, "x"), own, templates)
