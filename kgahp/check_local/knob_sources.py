"""Does the configuration parse, and where each knob's value comes from (the default, a config
file or the environment).
"""

from __future__ import annotations

import os
from typing import Any, Optional

from kgahp.check_local.permissions import Account
from kgahp.check_local.result import FAIL, OK, Result
from kgahp.config import KNOBS, PREFIX, Settings, settings_from_mapping
from kgahp.errors import ConfigError

DEFAULT, CONFIG, ENVIRONMENT = "default", "config file", "environment"


def knob_sources(environ: Optional[dict[str, str]] = None
                 ) -> tuple[dict[str, tuple[str, str]], str]:
    """({knob: (value, source)}, HTCondor's $(LOG)), read the way load_settings reads them:
    htcondor2.param when the bindings are installed (which also applies `_CONDOR_` variables),
    else the `_CONDOR_KGAHP_*` environment variables alone."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, tuple[str, str]] = {}
    log_dir = ""
    param: Any = None
    try:
        import htcondor2

        param = htcondor2.param
    except Exception:  # no bindings or no configuration: the environment still counts
        param = None
    for knob in KNOBS:
        from_env = env.get(f"_CONDOR_{PREFIX}{knob.name}")
        value: Optional[str] = None
        if param is not None:
            try:
                got = param.get(PREFIX + knob.name)
            except Exception:
                got = None
            value = None if got is None else str(got)
        elif from_env is not None:
            value = from_env
        if value is None:
            values[knob.name] = (knob.default, DEFAULT)
        elif from_env is not None and from_env == value:
            values[knob.name] = (value, ENVIRONMENT)
        else:
            values[knob.name] = (value, CONFIG)
    if param is not None:
        try:
            log_dir = str(param.get("LOG") or "")
        except Exception:
            log_dir = ""
    if log_dir and not os.path.isdir(log_dir):
        log_dir = ""
    return values, log_dir


def check_config(who: Account, environ: Optional[dict[str, str]] = None
                 ) -> tuple[Optional[Settings], list[Result]]:
    values, log_dir = knob_sources(environ)
    shown = {f"{PREFIX}{name}": {"value": value, "source": source}
             for name, (value, source) in values.items()}
    changed = sum(1 for _, source in values.values() if source != DEFAULT)
    try:
        settings = settings_from_mapping(
            {name: value for name, (value, source) in values.items() if source != DEFAULT},
            condor_log_dir=log_dir, user=who.name)
    except ConfigError as exc:
        return None, [Result("config", FAIL, str(exc), "correct that knob in the HTCondor "
                             "configuration (condor_config_val -v KNOB shows where it is set)",
                             {"knobs": shown})]
    return settings, [Result("config", OK, f"{len(values)} knobs parse ({changed} set, the rest "
                             "at their defaults)", data={"knobs": shown})]
