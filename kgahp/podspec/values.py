"""Syntax checks for job-supplied values that go into a pod: reject what Kubernetes would refuse.

The checks raise JobAdError naming the attribute, so the job owner reads why the submit failed
instead of an API error about `spec.containers[0]...`.
"""

from __future__ import annotations

import re

from kgahp.errors import JobAdError
from kgahp.k8snames import env_name_problems

# the container image reference grammar (github.com/distribution/reference, regexp.go)
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_IMAGE_RE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$")
IMAGE_MAX = 4096


def check_image(image: str, attribute: str = "KubernetesImage") -> str:
    """The image reference unchanged, or JobAdError saying why it is not one."""
    if not image:
        raise JobAdError(f"{attribute} is empty")
    if len(image) > IMAGE_MAX or not _IMAGE_RE.fullmatch(image):
        raise JobAdError(f"{attribute} {_show(image)} is not a valid image reference "
                         "(lower-case repository, optional registry, :tag or @digest)")
    return image


def check_env_name(name: str) -> str:
    """The name unchanged, or JobAdError with the API server's own reason for refusing it."""
    problems = env_name_problems(name)
    if problems:
        raise JobAdError(f"Environment variable name {_show(name)} is not valid in Kubernetes: "
                         + "; ".join(problems))
    return name


def check_text(value: str, attribute: str) -> str:
    """Free text (arguments, env values, command) is data; only NUL cannot be passed to exec."""
    if "\x00" in value:
        raise JobAdError(f"{attribute} contains a NUL character")
    return value


def _show(text: str, limit: int = 80) -> str:
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown)
