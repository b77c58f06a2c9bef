"""Where the ads come from: ClassAd snapshot files (`condor_q -l`, `condor_status -l`, in the
old or the new syntax, parsed by classad2), or the pool itself through htcondor2 (the schedds'
idle jobs, the collector's startd ads of pilots).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import classad2

from kgahp.config import PREFIX, ProvisionSettings
from kgahp.errors import ConfigError, KgahpError

log = logging.getLogger(__name__)

IDLE_JOBS = "JobStatus == 1"
PILOT_STARTDS = "KgahpPilotShape =!= undefined"


class PoolError(KgahpError):
    """The pool could not be asked (a schedd or the collector did not answer)."""


def read_ads(path: str) -> list[classad2.ClassAd]:
    """Every ad in the file; ConfigError naming the file when it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not text.strip():
        return []
    try:
        ads = list(classad2.parseAds(text))
    except Exception as exc:   # classad2 raises its own type for a parse error
        ads, detail = [], f": {exc}"
    else:
        detail = ""
    if not ads:   # classad2 skips what it cannot read: nothing at all from text is an error
        raise ConfigError(f"{path} is not a ClassAd listing (condor_q -l / condor_status -l "
                          f"output){detail}")
    return ads


def constraint_expr(text: str) -> classad2.ExprTree:
    try:
        return classad2.ExprTree(text)
    except Exception:
        raise ConfigError(f"{PREFIX}PROVISION_JOB_CONSTRAINT = {text!r} is not a ClassAd "
                          "expression") from None


def _collector(settings: ProvisionSettings) -> Any:
    import htcondor2

    return htcondor2.Collector(settings.collector) if settings.collector else \
        htcondor2.Collector()


def live_jobs(settings: ProvisionSettings, projection: Sequence[str] = ()
              ) -> list[classad2.ClassAd]:
    """The idle jobs of the configured schedds (the local one when none is named)."""
    import htcondor2

    constraint = f"({IDLE_JOBS}) && ({settings.job_constraint})"
    out: list[classad2.ClassAd] = []
    try:
        if not settings.schedds:
            out += htcondor2.Schedd().query(constraint, list(projection))
        else:
            collector = _collector(settings)
            for name in settings.schedds:
                location = collector.locate(htcondor2.DaemonType.Schedd, name)
                out += htcondor2.Schedd(location).query(constraint, list(projection))
    except Exception as exc:   # htcondor2 raises HTCondorException and friends
        raise PoolError(f"querying idle jobs failed: {exc}") from None
    return out


def live_startds(settings: ProvisionSettings) -> list[classad2.ClassAd]:
    """The startd ads of pilots (ads that carry KgahpPilotShape)."""
    import htcondor2

    try:
        return list(_collector(settings).query(htcondor2.AdType.Startd, PILOT_STARTDS))
    except Exception as exc:
        raise PoolError(f"querying the collector for pilot startds failed: {exc}") from None
