"""kgahp's knobs, read once from HTCondor's configuration and passed down as frozen dataclasses.

Every knob is `KGAHP_<NAME>` in HTCondor's configuration, so `condor_config_val KGAHP_NAMESPACE`
shows it and `_CONDOR_KGAHP_NAMESPACE=...` in the environment overrides it. Each knob is declared
once, as a field of one of the section dataclasses in `kgahp.config.settings` (`knob(...)`, from
`kgahp.config.knob`: its name, its default as written in a config file, its meaning and the
parser, from `kgahp.config.parsers`, that turns the text into the field's value).
`KNOBS` and `show-config` are derived from those fields (`kgahp.config.loading`), and so are
`condor_config.d/50-kgahp.conf` and `docs/configuration.md` (kgahp.knob_reference; `kgahp
show-config --write-docs .` in a checkout rewrites both files; tests/docs checks they agree).
"""

from __future__ import annotations

from kgahp.config.knob import PREFIX, Knob, knob
from kgahp.config.loading import KNOBS, SECTIONS, describe, load_settings, settings_from_mapping
from kgahp.config.parsers import GPU_MODE_NAME, GpuMode, quantity_value
from kgahp.config.settings import (
    KubeSettings,
    LifecycleSettings,
    PodSettings,
    ProvisionSettings,
    ServerSettings,
    Settings,
    TransferSettings,
    default_instance,
)

__all__ = [
    "GPU_MODE_NAME", "KNOBS", "PREFIX", "SECTIONS", "GpuMode", "Knob", "KubeSettings",
    "LifecycleSettings", "PodSettings", "ProvisionSettings", "ServerSettings", "Settings",
    "TransferSettings",
    "default_instance", "describe", "knob", "load_settings", "quantity_value",
    "settings_from_mapping",
]
