"""The knobs of `kgahp provision` (its own section: the GAHP never reads them)."""

from __future__ import annotations

from dataclasses import dataclass

from kgahp.config.knob import knob
from kgahp.config.parsers import _csv


@dataclass(frozen=True)
class ProvisionSettings:
    """`kgahp provision`: pilots started as pods when idle jobs could run on them."""

    shapes: str = knob(
        "PROVISION_SHAPES", "",
        "YAML file listing the pilot shapes (cpus, memory, disk, GPUs, queue, START, caps); "
        "see Pilots on demand. Empty = kgahp provision refuses to run")
    interval: float = knob(
        "PROVISION_INTERVAL", "60",
        "Seconds between two provisioning cycles",
        parse=float)
    schedds: tuple[str, ...] = knob(
        "PROVISION_SCHEDDS", "",
        "Comma list of schedd names whose idle jobs are the demand; empty = the local schedd",
        parse=_csv)
    collector: str = knob(
        "PROVISION_COLLECTOR", "",
        "Collector (host[:port]) to locate those schedds and read the pilots' startd ads from; "
        "empty = COLLECTOR_HOST")
    job_constraint: str = knob(
        "PROVISION_JOB_CONSTRAINT", "true",
        "ClassAd constraint an idle job (JobStatus == 1) must also meet to count as demand, "
        "e.g. 'WantPilots =!= false'")
    instance: str = knob(
        "PROVISION_INSTANCE", "pilots",
        "Label value (kgahp.htcondor.org/instance) of this provisioner's pilot pods; two "
        "provisioners on one cluster need different values, and a GAHP never uses this one")
    attenuation: float = knob(
        "PROVISION_ATTENUATION", "3",
        "Idle matching jobs per pilot asked for in one cycle: a shape asks for "
        "ceil(idle / ATTENUATION) + RESERVE pilots waiting for work (at least 1)",
        parse=float)
    reserve: int = knob(
        "PROVISION_RESERVE", "1",
        "Extra pilots a shape keeps waiting for work while it has demand (never more than its "
        "idle matching jobs)",
        parse=int)
    max_pilots: int = knob(
        "PROVISION_MAX_PILOTS", "100",
        "Global cap: pilot pods of all shapes together (pending, idle and busy)",
        parse=int)
    max_pilots_per_shape: int = knob(
        "PROVISION_MAX_PILOTS_PER_SHAPE", "50",
        "Cap per shape, for shapes whose YAML entry sets no maxPilots",
        parse=int)
    curb: float = knob(
        "PROVISION_CURB", "0.8",
        "Fraction of a cap (per shape or global) past which each cycle creates half of what it "
        "otherwise would",
        parse=float)
    create_rate: float = knob(
        "PROVISION_CREATE_RATE", "1",
        "Pilot pods created per second at most, on average (bursts up to one interval's worth); "
        "every request also waits for the QPS/BURST limiter",
        parse=float)
    idle_grace: float = knob(
        "PROVISION_IDLE_GRACE", "300",
        "Seconds a pilot must be unclaimed (or a pod pending) before it may be deleted once its "
        "shape has less demand than pilots; busy pilots are never deleted",
        parse=float)
    noclaim_shutdown: int = knob(
        "PROVISION_NOCLAIM_SHUTDOWN", "1200",
        "The STARTD_NOCLAIM_SHUTDOWN given to each pilot: seconds it waits for a first claim "
        "before it shuts itself down",
        parse=int)
    unschedulable_limit: float = knob(
        "PROVISION_UNSCHEDULABLE_LIMIT", "600",
        "Seconds a pilot pod may stay unschedulable before it counts as a failure of its shape",
        parse=float)
    backoff: float = knob(
        "PROVISION_BACKOFF", "60",
        "Seconds a shape waits after a pilot failed (image pull, config error, crash, "
        "unschedulable) before it tries one pilot again; doubled per further failure",
        parse=float)
    backoff_max: float = knob(
        "PROVISION_BACKOFF_MAX", "3600",
        "Longest backoff; failed pilot pods are kept this long as the record of the failure, "
        "then deleted",
        parse=float)
