"""The pilot shapes an admin offers (KGAHP_PROVISION_SHAPES), read from YAML once.

The file follows the style of KGAHP_QUEUE_CONFIG (and is read by the same YAML reader):

    defaults:                       # merged under every shape (a shape's own keys win)
      queue: pilots                 # the KGAHP_QUEUE_CONFIG queue whose template and policy apply
      command: [/usr/sbin/condor_master, -f]
      environment: {CONDOR_HOST: cm.example.org}
      attributes: {HAS_SINGULARITY: true}
    shapes:
      cpu-4:  {cpus: 4, memory: 8Gi, disk: 20Gi, maxPilots: 40}
      gpu-1:  {cpus: 8, memory: 32Gi, disk: 40Gi, gpus: 1, gpuModel: NVIDIA-A100,
               start: 'TARGET.RequestGPUs >= 1'}

`memory` and `disk` are MiB when plain numbers, or Kubernetes quantities (`8Gi`). `start` is the
shape's START expression (ClassAd language, TARGET is the job). `attributes` are extra machine
ad attributes: YAML strings become ClassAd strings, numbers and booleans stay what they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Union

import classad2

from kgahp.config import PREFIX, quantity_value
from kgahp.errors import ConfigError
from kgahp.k8snames import is_dns_label
from kgahp.podspec.templates import _read_yaml

DEFAULT_COMMAND = ("/usr/sbin/condor_master", "-f")
NAME_MAX = 20          # room for it in pod names and in a label value
AttrValue = Union[str, int, float, bool]

_SHAPE_KEYS = frozenset({"cpus", "memory", "disk", "gpus", "gpuModel", "queue", "image",
                         "command", "environment", "start", "attributes", "maxPilots"})
_TOP_KEYS = frozenset({"defaults", "shapes"})


@dataclass(frozen=True)
class Shape:
    """One pilot shape: what its pods request and what its startd advertises."""

    name: str
    cpus: float = 1.0
    memory_mib: int = 2048
    disk_mib: int = 10240
    gpus: int = 0
    gpu_model: Optional[str] = None
    queue: Optional[str] = None
    image: Optional[str] = None
    command: tuple[str, ...] = DEFAULT_COMMAND
    environment: tuple[tuple[str, str], ...] = ()
    start: str = "true"
    attributes: tuple[tuple[str, AttrValue], ...] = ()
    max_pilots: Optional[int] = None


def load_shapes(path: str) -> tuple[Shape, ...]:
    """The shapes of the YAML file `path`; ConfigError names the file, shape and key at fault."""
    if not path.strip():
        raise ConfigError(f"{PREFIX}PROVISION_SHAPES is not set: list the pilot shapes in a "
                          "YAML file and point the knob at it")
    return parse_shapes(_read_yaml(path, f"{PREFIX}PROVISION_SHAPES"), path)


def parse_shapes(data: Any, source: str) -> tuple[Shape, ...]:
    if not isinstance(data, dict) or set(data) - _TOP_KEYS:
        raise ConfigError(f"{source}: expected a mapping with the keys 'shapes' and optionally "
                          "'defaults'")
    defaults = data.get("defaults") or {}
    raw = data.get("shapes")
    if not isinstance(defaults, dict):
        raise ConfigError(f"{source}: 'defaults' must be a mapping")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{source}: 'shapes' must map at least one shape name to its settings")
    _check_keys(defaults, f"{source}: defaults")
    shapes = []
    for name, entry in raw.items():
        if entry is not None and not isinstance(entry, dict):
            raise ConfigError(f"{source}: shape {name!r} must be a mapping")
        shapes.append(_shape(str(name), {**defaults, **(entry or {})}, f"{source}: shape "
                             f"{name!r}"))
    return tuple(shapes)


def _check_keys(entry: dict[str, Any], where: str) -> None:
    unknown = sorted(str(k) for k in set(entry) - _SHAPE_KEYS)
    if unknown:
        raise ConfigError(f"{where} has unknown keys {', '.join(unknown)} "
                          f"(allowed: {', '.join(sorted(_SHAPE_KEYS))})")


def _shape(name: str, entry: dict[str, Any], where: str) -> Shape:
    if not (is_dns_label(name) and len(name) <= NAME_MAX):
        raise ConfigError(f"{where}: the name must be lower-case letters, digits and '-', at "
                          f"most {NAME_MAX} characters (it goes into pod names and labels)")
    _check_keys(entry, where)
    cpus = _number(entry, "cpus", where, 1.0)
    if cpus <= 0:
        raise ConfigError(f"{where}: cpus must be more than 0")
    gpus = int(_number(entry, "gpus", where, 0))
    max_pilots = entry.get("maxPilots")
    if max_pilots is not None and (not isinstance(max_pilots, int) or isinstance(
            max_pilots, bool) or max_pilots < 0):
        raise ConfigError(f"{where}: maxPilots must be a whole number >= 0")
    return Shape(
        name=name, cpus=cpus,
        memory_mib=_mebibytes(entry, "memory", where, 2048),
        disk_mib=_mebibytes(entry, "disk", where, 10240),
        gpus=gpus, gpu_model=_opt_str(entry, "gpuModel", where),
        queue=_opt_str(entry, "queue", where), image=_opt_str(entry, "image", where),
        command=_command(entry.get("command"), where),
        environment=tuple((str(k), _scalar_text(v, f"{where}: environment {k}"))
                          for k, v in _mapping(entry, "environment", where).items()),
        start=check_expression(str(entry.get("start", "true")), f"{where}: start"),
        attributes=tuple((_attr_name(str(k), where), _attr_value(v, f"{where}: attribute {k}"))
                         for k, v in _mapping(entry, "attributes", where).items()),
        max_pilots=max_pilots,
    )


def check_expression(text: str, where: str) -> str:
    """`text` if it is exactly one ClassAd expression (parsed by classad2), else ConfigError."""
    if not text.strip() or "\n" in text:
        raise ConfigError(f"{where}: expected one ClassAd expression on one line")
    try:
        ad = classad2.ClassAd(f"[ START = {text} ]")
    except Exception:   # classad2 raises its own exception type for a parse error
        ad = None
    if ad is None or list(ad.keys()) != ["START"]:
        raise ConfigError(f"{where}: {text!r} is not a ClassAd expression")
    return text.strip()


def _number(entry: dict[str, Any], key: str, where: str, default: float) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value < 0:
        raise ConfigError(f"{where}: {key} must be a number >= 0")
    return float(value)


def _mebibytes(entry: dict[str, Any], key: str, where: str, default: int) -> int:
    value = entry.get(key, default)
    if isinstance(value, str):
        try:
            return max(1, math.ceil(quantity_value(value) / 2**20))
        except ValueError:
            raise ConfigError(f"{where}: {key} {value!r} is not a quantity such as 8Gi") from None
    return max(1, math.ceil(_number(entry, key, where, default)))


def _opt_str(entry: dict[str, Any], key: str, where: str) -> Optional[str]:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def _command(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_COMMAND
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: command must be a list of strings (the program and its "
                          "arguments)")
    return tuple(value)


def _mapping(entry: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = entry.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a mapping")
    return value


def _scalar_text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ConfigError(f"{where} must be a string or a number")


def _attr_name(name: str, where: str) -> str:
    if not name.replace("_", "a").isalnum() or not name[0].isalpha():
        raise ConfigError(f"{where}: attribute name {name!r} is not a ClassAd attribute name")
    return name


def _attr_value(value: Any, where: str) -> AttrValue:
    if isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"{where} must be a string, a number or true/false")
