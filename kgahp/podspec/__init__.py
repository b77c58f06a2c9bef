"""JobRequest + the admin's templates and policy -> Pod manifests. Pure, except load_templates."""

from __future__ import annotations

from kgahp.podspec.build import MAIN_CONTAINER, build_pod, main_container, resources
from kgahp.podspec.merge import strategic_merge
from kgahp.podspec.names import (
    JobDirInfo,
    job_base_name,
    label_value,
    parse_job_directory,
    pod_name,
)
from kgahp.podspec.policy import check, choose_namespace, verify_pod
from kgahp.podspec.templates import QueueConfig, Templates, load_templates, templates_from_data

__all__ = [
    "MAIN_CONTAINER",
    "JobDirInfo",
    "QueueConfig",
    "Templates",
    "build_pod",
    "check",
    "choose_namespace",
    "job_base_name",
    "label_value",
    "load_templates",
    "main_container",
    "parse_job_directory",
    "pod_name",
    "resources",
    "strategic_merge",
    "templates_from_data",
    "verify_pod",
]
