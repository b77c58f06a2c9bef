"""Reading the knobs: `KNOBS`, derived from the settings fields; `settings_from_mapping` (text ->
checked `Settings`); `load_settings` through HTCondor's configuration; `describe` for
show-config.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any, Optional

from kgahp.config.knob import KNOB_KEY, PREFIX, Knob
from kgahp.config.parsers import quantity_value
from kgahp.config.settings import (
    KubeSettings,
    LifecycleSettings,
    PodSettings,
    ProvisionSettings,
    ServerSettings,
    Settings,
    TransferSettings,
)
from kgahp.errors import ConfigError

# --- the knob list, derived from the fields of the settings

SECTIONS: dict[str, type] = {
    "kube": KubeSettings,
    "server": ServerSettings,
    "pod": PodSettings,
    "lifecycle": LifecycleSettings,
    "transfer": TransferSettings,
    "provision": ProvisionSettings,
}

KNOBS: tuple[Knob, ...] = tuple(
    replace(f.metadata[KNOB_KEY], section=section, attr=f.name)
    for section, cls in SECTIONS.items() for f in fields(cls) if KNOB_KEY in f.metadata)


def settings_from_mapping(values: Mapping[str, str], *, condor_log_dir: str = "",
                          user: str = "", schedd: str = "") -> Settings:
    """Build Settings from `{knob name without prefix: text}`; missing knobs take defaults.

    Raises ConfigError naming the knob when a value cannot be used.
    """
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for spec in KNOBS:
        name = spec.name
        raw = values.get(name)
        if raw is None:
            raw = spec.default
        raw = str(raw).strip()
        try:
            value = spec.parse(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{PREFIX}{name} = {raw!r} is not valid: {exc}") from None
        if spec.choices and value not in spec.choices:
            raise ConfigError(
                f"{PREFIX}{name} = {raw!r} is not one of {', '.join(spec.choices)}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"{PREFIX}{name} = {raw!r} must not be negative")
        sections[spec.section][spec.attr] = value
    if (sections["transfer"]["mode"] == "shared" and values.get("RUN_AS_USER") is None
            and os.getuid() != 0):
        # files on the shared volume belong to the job owner: the job runs as the owner
        sections["pod"]["run_as_user"] = os.getuid()
        if values.get("RUN_AS_GROUP") is None:
            sections["pod"]["run_as_group"] = os.getgid()
    pod = PodSettings(**sections["pod"])
    gpu_resources = {pod.gpu_resource} | {m.resource for m in pod.gpu_modes}
    if pod.mic_resource and pod.mic_resource in gpu_resources:
        raise ConfigError(f"{PREFIX}MIC_RESOURCE = {pod.mic_resource!r} is also a GPU resource "
                          f"({PREFIX}GPU_RESOURCE or {PREFIX}GPU_MODES): MIC cards need their own")
    transfer = TransferSettings(**sections["transfer"])
    for resource in ("cpu", "memory"):
        request = getattr(transfer, f"helper_{resource}_request")
        limit = getattr(transfer, f"helper_{resource}_limit")
        if quantity_value(request) > quantity_value(limit):
            raise ConfigError(f"{PREFIX}HELPER_{resource.upper()}_REQUEST = {request} is more "
                              f"than {PREFIX}HELPER_{resource.upper()}_LIMIT = {limit}")
    if transfer.mode == "shared" and not transfer.shared_volume:
        raise ConfigError(f"{PREFIX}TRANSFER_MODE = shared needs {PREFIX}SHARED_VOLUME")
    return Settings(
        kube=KubeSettings(**sections["kube"]),
        server=ServerSettings(**sections["server"]),
        pod=pod,
        lifecycle=LifecycleSettings(**sections["lifecycle"]),
        transfer=transfer,
        provision=ProvisionSettings(**sections["provision"]),
        condor_log_dir=condor_log_dir,
        user=user,
        schedd=schedd,
    )


def _current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): fall back to the uid
        return str(os.getuid())


def load_settings(overrides: Optional[Mapping[str, str]] = None) -> Settings:
    """Read every KGAHP_ knob through HTCondor's configuration (htcondor2.param).

    `overrides` (knob name without prefix -> text) win over the configuration; the CLI uses them.
    Without a readable HTCondor configuration the defaults apply, as do `_CONDOR_KGAHP_*`
    environment variables (HTCondor's own override rule).
    """
    values: dict[str, str] = {}
    log_dir = ""
    schedd = ""
    try:
        import htcondor2

        param = htcondor2.param
        for knob in KNOBS:
            v = param.get(PREFIX + knob.name)
            if v is not None:
                values[knob.name] = str(v)
        log_dir = str(param.get("LOG") or "")
        # the schedd whose gridmanager runs this GAHP: its configured name, else the host's
        schedd = str(param.get("SCHEDD_NAME") or param.get("FULL_HOSTNAME") or "")
    except Exception:  # htcondor2 without any config file: env overrides still count
        for knob in KNOBS:
            v = os.environ.get(f"_CONDOR_{PREFIX}{knob.name}")
            if v is not None:
                values[knob.name] = v
        schedd = os.environ.get("_CONDOR_SCHEDD_NAME", "")
    if not schedd:
        schedd = socket.getfqdn()
    if log_dir and not os.path.isdir(log_dir):
        log_dir = ""
    values.update(overrides or {})
    return settings_from_mapping(values, condor_log_dir=log_dir, user=_current_user(),
                                 schedd=schedd)


def describe(settings: Settings) -> dict[str, Any]:
    """Flat view for `kgahp --show-config` and the log's first lines (nothing secret lives here)."""
    out: dict[str, Any] = {}
    for section in SECTIONS:
        obj = getattr(settings, section)
        for f in fields(obj):
            out[f"{section}.{f.name}"] = getattr(obj, f.name)
    return out
