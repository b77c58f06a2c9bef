"""The parsers of knob values: the text of a knob -> the value of its field. A ValueError names
the problem; the loader adds the knob's name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional

from kgahp.config.knob import PREFIX
from kgahp.errors import ConfigError
from kgahp.k8snames import is_label_value, is_qualified_name


def _csv(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.replace(";", ",").split(",") if p.strip())


def _lower(value: str) -> str:
    return value.strip().lower()


def _bool(value: str) -> bool:
    """HTCondor's booleans: true/false, yes/no, on/off, 1/0 (any case)."""
    text = value.strip().lower()
    if text in ("true", "yes", "on", "1", "t", "y"):
        return True
    if text in ("false", "no", "off", "0", "f", "n"):
        return False
    raise ValueError(f"{value!r} is not a boolean (true or false)")


def _reconcile_workers(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 256:
        raise ValueError("must be between 1 and 256")
    return number


def _byte_count(value: str) -> int:
    number = int(value.strip())
    if number < 0:
        raise ValueError("must be 0 or more bytes")
    return number


def _log_level(value: str) -> str:
    return value.strip().upper() or "INFO"


def _extended_resource(value: str) -> str:
    """An extended resource name: domain/name outside kubernetes.io, so never cpu or memory."""
    value = value.strip()
    if not value:
        return ""
    domain = value.rpartition("/")[0]
    if not domain or not is_qualified_name(value):
        raise ValueError(f"{value!r} is not an extended resource name such as vendor.com/device")
    if domain == "kubernetes.io" or domain.endswith(".kubernetes.io"):
        raise ValueError(f"{value!r} is in the kubernetes.io domain, not an extended resource")
    return value


# A Kubernetes quantity as an admin writes one for cpu or memory: 100m, 0.5, 64Mi, 1G
_QUANTITY = re.compile(r"([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?")


_SCALE = {None: 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10,
          "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity_value(value: str) -> float:
    """A quantity accepted by `_quantity` as a number (cores or bytes)."""
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a quantity")
    return float(match.group(1)) * _SCALE[match.group(3)]


def _quantity(value: str, what: str) -> str:
    value = value.strip()
    if not _QUANTITY.fullmatch(value):
        raise ValueError(f"not a Kubernetes {what} quantity such as "
                         f"{'100m' if what == 'cpu' else '64Mi'}")
    return value


def _cpu_quantity(value: str) -> str:
    return _quantity(value, "cpu")


def _memory_quantity(value: str) -> str:
    return _quantity(value, "memory")


GPU_MODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")   # also what GPUMode may hold


@dataclass(frozen=True)
class GpuMode:
    """One KGAHP_GPU_MODES entry: what a job's GPUMode turns into."""

    name: str                                         # lower-case mode name
    resource: str = ""                                # "" = KGAHP_GPU_RESOURCE
    node_selector: tuple[tuple[str, str], ...] = ()   # admin's label=value pairs


def _gpu_modes(value: str) -> tuple[GpuMode, ...]:
    """`MODE:RESOURCE[:LABEL=VALUE...]` entries separated by spaces or commas."""
    modes: list[GpuMode] = []
    for entry in value.replace(",", " ").split():
        name, _, rest = entry.partition(":")
        if not GPU_MODE_NAME.fullmatch(name):
            raise ValueError(f"entry {entry!r}: the mode must be a short name "
                             "(letters, digits, '_', '-', '.')")
        if any(m.name == name.lower() for m in modes):
            raise ValueError(f"mode {name!r} is listed twice")
        resource, *selectors = rest.split(":") if rest else [""]
        pairs: list[tuple[str, str]] = []
        for selector in selectors:
            key, equals, label = selector.partition("=")
            if not (equals and is_qualified_name(key) and is_label_value(label)):
                raise ValueError(f"entry {entry!r}: {selector!r} is not a node selector "
                                 "LABEL=VALUE")
            pairs.append((key, label))
        modes.append(GpuMode(name.lower(), _extended_resource(resource) if resource else "",
                             tuple(pairs)))
    return tuple(modes)


def _env_pairs(value: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in value.split(";"):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ConfigError(f"{PREFIX}ENVIRONMENT entry {item!r} is not NAME=VALUE")
        name, _, val = item.partition("=")
        pairs.append((name.strip(), val))
    return tuple(pairs)


def _numeric_id(value: str, knob: str) -> Optional[int]:
    """A non-root numeric user or group id; 'image' (HTCondor cannot say empty when the
    default is not) = None: kgahp sets none."""
    if value.strip().lower() in ("", "image"):
        return None
    if value.strip().lower() == "owner":
        number = os.getuid() if knob == "RUN_AS_USER" else os.getgid()
        if number == 0:
            raise ValueError("the GAHP runs as root, so 'owner' would be root; set a number")
        return number
    number = int(value)
    if number == 0:
        raise ValueError(f"0 is root; set {PREFIX}{knob} = image to let the image decide")
    if not 0 < number <= 2**31 - 1:
        raise ValueError("must be between 1 and 2147483647")
    return number


def _user_id(value: str) -> Optional[int]:
    return _numeric_id(value, "RUN_AS_USER")


def _group_id(value: str) -> Optional[int]:
    return _numeric_id(value, "RUN_AS_GROUP")
