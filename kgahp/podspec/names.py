"""Pod names, label values and the label/annotation keys that tie a pod to its HTCondor job.

Everything here is pure and total: any JobDirectory string, however odd, yields a valid name.
The grammar those names follow is kgahp.k8snames.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Optional

from kgahp.k8snames import is_dns_label as is_dns_label  # re-exported for the pod builder
from kgahp.k8snames import is_label_value as is_label_value
from kgahp.k8snames import label_value as label_value
from kgahp.k8snames import short_hash

# --- label keys (values are sanitised with label_value)
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "kgahp"
LABEL_INSTANCE = "kgahp.htcondor.org/instance"
LABEL_JOB = "kgahp.htcondor.org/job"            # value: the job's base name
LABEL_ATTEMPT = "kgahp.htcondor.org/attempt"
LABEL_SCHEDD = "kgahp.htcondor.org/schedd"
LABEL_CLUSTER_PROC = "kgahp.htcondor.org/cluster-proc"
LABEL_OWNER = "kgahp.htcondor.org/owner"
LABEL_PROJECT = "kgahp.htcondor.org/project"
LABEL_QUEUE = "kgahp.htcondor.org/queue"
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
LABEL_KUEUE_PRIORITY = "kueue.x-k8s.io/priority-class"   # a Kueue WorkloadPriorityClass

# --- annotation keys (values are the full, unsanitised text)
ANN_JOB_DIRECTORY = "kgahp.htcondor.org/job-directory"
ANN_ATTEMPT = "kgahp.htcondor.org/attempt"
ANN_RESTARTS = "kgahp.htcondor.org/restarts"
ANN_SCHEDD = "kgahp.htcondor.org/schedd"
ANN_OWNER = "kgahp.htcondor.org/owner"
ANN_PROJECT = "kgahp.htcondor.org/project"
ANN_QUEUE = "kgahp.htcondor.org/queue"      # the queue whose admin overlay the pod was built from

# --- the tracking finalizer (kgahp/finalizers.py): kept until kgahp has read the pod's result
FINALIZER_COLLECT = "kgahp.htcondor.org/collect"

BASE_NAME_MAX = 56          # leaves room for "-<attempt>" with up to 6 digits in a 63-char label
DEFAULT_PREFIX = "kg"

_JOB_DIR_PREFIX = "home_bl_"
# <collector host>_<port>_<schedd name>_<cluster>.<proc>_<submit time>
_WITH_PORT = re.compile(r"^(?P<collector>[^_]+_\d+)_(?P<schedd>.+)_(?P<cp>\d+\.\d+)_(?P<t>\d+)$")
# a collector address without a port
_NO_PORT = re.compile(r"^(?P<collector>[^_]+)_(?P<schedd>.+)_(?P<cp>\d+\.\d+)_(?P<t>\d+)$")


@dataclass(frozen=True)
class JobDirInfo:
    """What a JobDirectory tells about the job; None where it could not be read."""

    collector: Optional[str] = None
    schedd: Optional[str] = None          # the schedd name with '@' turned into '_'
    cluster_proc: Optional[str] = None    # "1234.0"
    submit_time: Optional[int] = None


def parse_job_directory(job_directory: str) -> JobDirInfo:
    """Best-effort reading of `home_bl_<collector>_<schedd>_<cluster.proc>_<time>`; never fails."""
    rest = job_directory
    if rest.startswith(_JOB_DIR_PREFIX):
        rest = rest[len(_JOB_DIR_PREFIX):]
    match = _WITH_PORT.fullmatch(rest) or _NO_PORT.fullmatch(rest)
    if match is None:
        return JobDirInfo()
    return JobDirInfo(collector=match["collector"], schedd=match["schedd"],
                      cluster_proc=match["cp"], submit_time=int(match["t"]))


def _dns_fragment(text: str) -> str:
    """Lower-case, every char outside [a-z0-9] -> '-', no leading/trailing/double '-'."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower())
    return out.strip("-")


def _fit(fragment: str, budget: int) -> str:
    return fragment[:max(budget, 0)].strip("-")


@functools.lru_cache(maxsize=4096)
def job_base_name(job_directory: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Deterministic DNS-1123 label of at most 56 chars: `<prefix>-<schedd>-<cluster-proc>-<hash>`.

    The hash (of the full JobDirectory) keeps names unique when the readable part is cut or
    when two JobDirectories differ only in characters that were replaced. Remembered for the
    latest few thousand JobDirectories: a submit asks twice (the job id, the pod's name).
    """
    digest = short_hash(job_directory)
    clean_prefix = _fit(_dns_fragment(prefix), 16) or DEFAULT_PREFIX
    info = parse_job_directory(job_directory)
    budget = BASE_NAME_MAX - len(clean_prefix) - len(digest) - 2
    if info.cluster_proc is not None and info.schedd is not None:
        cluster_proc = _fit(_dns_fragment(info.cluster_proc), budget)
        schedd_short = _dns_fragment(info.schedd.split(".")[0])
        schedd_part = _fit(schedd_short, budget - len(cluster_proc) - 1)
        readable = "-".join(p for p in (schedd_part, cluster_proc) if p)
    else:
        tail = job_directory[len(_JOB_DIR_PREFIX):] if job_directory.startswith(
            _JOB_DIR_PREFIX) else job_directory
        # keep the end: for unknown shapes the most specific part is usually last
        readable = _dns_fragment(tail)[-budget:].strip("-") if budget > 0 else ""
    return "-".join(p for p in (clean_prefix, readable, digest) if p)


def pod_name(base: str, attempt: int) -> str:
    """Name of the pod for one attempt (the first attempt is 1)."""
    return f"{base}-{attempt}"
