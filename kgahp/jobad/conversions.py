"""Value conversions of the submit ad: (attribute name for the message, evaluated value) ->
typed value, or a JobAdError whose sentence the job owner will read. One-line fields reject
control characters; numbers must be finite.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Optional

import classad2

from kgahp.config import GPU_MODE_NAME
from kgahp.errors import JobAdError
from kgahp.k8snames import is_dns_label

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_TRUE_WORDS = {"true": True, "yes": True, "false": False, "no": False}


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, classad2.ClassAd):
        return "a nested ClassAd"
    return f"a {type(value).__name__}"


def _as_string(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise JobAdError(f"{name} must be a string, not {_describe(value)}.")
    if "\x00" in value:
        raise JobAdError(f"{name} contains a NUL character.")
    return value


def _as_text(name: str, value: object) -> Optional[str]:
    """A free-form string (arguments, environment, extra args): empty -> None."""
    return _as_string(name, value) or None


def _as_line(name: str, value: object) -> Optional[str]:
    """A one-line string (path, name): no control characters; empty -> None."""
    text = _as_string(name, value)
    _check_line(name, text)
    return text or None


def _check_line(name: str, text: str) -> None:
    if _CONTROL_CHARACTERS.search(text):
        raise JobAdError(f"{name} contains a control character (newline, tab, ...).")


def _as_image(name: str, value: object) -> Optional[str]:
    image = _as_line(name, value)
    if image is not None and (image != image.strip() or " " in image):
        raise JobAdError(f"{name} must be an image reference without spaces.")
    return image


def _as_gpu_mode(name: str, value: object) -> Optional[str]:
    mode = _as_line(name, value)
    if mode is None or not mode.strip():
        return None
    if not GPU_MODE_NAME.fullmatch(mode.strip()):   # never echo it: it may be anything
        raise JobAdError(f"{name} must be a GPU mode name such as 'shared' or "
                         "'exclusive_process' (letters, digits, '_', '-', '.'; "
                         "at most 63 characters).")
    return mode.strip()


def _as_namespace(name: str, value: object) -> Optional[str]:
    namespace = _as_line(name, value)
    if namespace is not None and not is_dns_label(namespace):
        raise JobAdError(f"{name} must be a Kubernetes namespace name (lower-case letters, "
                         "digits and '-', at most 63 characters).")
    return namespace


def _as_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise JobAdError(f"{name} must be a number, not {_describe(value)}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise JobAdError(f"{name} must be a finite number.")
    return value


def _whole_number(limit: int) -> Callable[[str, object], Optional[int]]:
    """A non-negative count in the attribute's unit; reals are rounded up (never under-ask)."""

    def convert(name: str, value: object) -> Optional[int]:
        number = _as_number(name, value)
        if number < 0:
            raise JobAdError(f"{name} must not be negative (got {number:g}).")
        if number > limit:
            raise JobAdError(f"{name} is implausibly large (got {number:g}, limit {limit}).")
        return math.ceil(number)

    return convert


def _as_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS:
        return _TRUE_WORDS[value.strip().lower()]
    raise JobAdError(f"{name} must be true or false, not {_describe(value)}.")
