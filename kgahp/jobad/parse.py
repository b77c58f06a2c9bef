r"""The submit ClassAd of `BLAH_JOB_SUBMIT` -> a validated `JobRequest`.

`parse_submit_ad` is pure: text in, `JobRequest` out, or `JobAdError` whose message is the one
sentence the job owner will read. No other exception escapes. The ad is parsed with classad2 only;
every value is evaluated in the ad (`remote_X` attributes arrive as unevaluated expressions),
`undefined` counts as absent and `error` is rejected. Attribute names are case-insensitive.

Attribute contract (first match wins; "CE" = the unwound `CERequirements`, see `cereq`):

| field             | attribute(s), first present wins            | type, unit, rules              |
|-------------------|---------------------------------------------|--------------------------------|
| job_directory     | `JobDirectory` (required)                   | string, one line               |
| iwd               | `Iwd` (required)                            | absolute path                  |
| cmd               | `Cmd` (required)                            | relative: joined to Iwd (1)    |
| stage_cmd         | `StageCmd`                                  | bool, default true             |
| arguments         | `Arguments` (V2) if non-empty, else `Args`  | see `arglist`                  |
| environment       | `Environment` (V2) if non-empty, else `Env` | see `envlist` (`EnvDelim`)     |
| stdin             | `In`                                        | as written; /dev/null: None    |
| stdout, stderr    | `Out`, `Err`                                | as written (relative to Iwd)   |
| transfer_input    | `TransferInput`                             | comma list, trimmed (2)        |
| transfer_output   | `TransferOutput`                            | comma list (2); absent: None   |
| output_remaps     | `TransferOutputRemaps`                      | `a=b;c=d`, `\=` `\;` escapes   |
| x509userproxy     | `x509userproxy`                             | relative: joined to Iwd        |
| image             | `KubernetesImage`, `K8sImage`, `k8s_image`  | then the same names in CE (3)  |
| namespace         | `KubernetesNamespace`, `K8sNamespace`,      | then the same names in CE;     |
|                   | `k8s_namespace`                             | DNS label                      |
| cpus              | `RequestCpus`, CE `RequestCpus`,            | number >= 0.001, reals kept;   |
|                   | `SMPGranularity`, `NodeNumber`              | none: 1                        |
| cpus_explicit     | any of the cpus attributes present          | bool                           |
| memory_mib        | `RequestMemory`, CE `RequestMemory`         | MiB >= 0, reals rounded up     |
| disk_kib          | `RequestDisk`, CE `RequestDisk`             | KiB >= 0, reals rounded up     |
| gpus              | `GPUNumber`, CE `GPUNumber`                 | >= 0, rounded up; default 0    |
| gpu_model         | `GPUModel`, CE `GPUModel`                   | string                         |
| gpu_mode          | `GPUMode`, CE `GPUMode`                     | short token (4)                |
| mics              | `MICNumber`, CE `MICNumber`                 | >= 0, rounded up; default 0    |
| runtime_seconds   | `BatchRuntime`                              | s >= 0, rounded up; 0: None    |
| queue             | `Queue`                                     | string                         |
| project           | `BatchProject`                              | string                         |
| whole_node        | `WholeNodes`                                | bool, yes/no/true/false, 0/1   |
| extra_submit_args | `BatchExtraSubmitArgs`                      | raw string, may span lines     |
| ce_attributes     | `CERequirements`                            | `cereq.unwind` (CE)            |
| attributes        | every attribute with a scalar value         | lower-cased name -> value      |

(1) unless StageCmd is false: then Cmd is a path inside the image, kept as written.
(2) entries kept as written (relative to Iwd or absolute; directories and URLs allowed),
    empty entries dropped.
(3) `KubernetesImage`/`K8sImage` arrive from `remote_X` job attributes renamed by the
    gridmanager; CE lookup keeps blahp-script (`k8s_image`) compatibility. None: admin default.
(4) letters, digits, '_', '-', '.', at most 63, surrounding blanks dropped: anything else is
    refused here, so only a plain name ever reaches `policy`, which maps it (KGAHP_GPU_MODES).

Optional strings that are empty count as absent. One-line fields (paths, names, image, queue...)
reject control characters; no string may contain NUL. Numbers must be finite and below sanity caps
far above any real request (admin policy limits are applied later, by `policy`).
"""

from __future__ import annotations

import logging
import math
import posixpath
from typing import Callable, Optional, TypeVar

import classad2

from kgahp.errors import JobAdError
from kgahp.jobad.arglist import job_arguments
from kgahp.jobad.cereq import unwind
from kgahp.jobad.conversions import (
    _as_bool,
    _as_gpu_mode,
    _as_image,
    _as_line,
    _as_namespace,
    _as_number,
    _as_string,
    _as_text,
    _check_line,
    _whole_number,
)
from kgahp.jobad.envlist import job_environment
from kgahp.model import JobRequest, Scalar

log = logging.getLogger(__name__)

IMAGE_ATTRIBUTES = ("KubernetesImage", "K8sImage", "k8s_image")
NAMESPACE_ATTRIBUTES = ("KubernetesNamespace", "K8sNamespace", "k8s_namespace")
CPU_ATTRIBUTES = ("RequestCpus", "SMPGranularity", "NodeNumber")  # RequestCpus also from CE
NO_STDIN = "/dev/null"

# Sanity caps: beyond these a value is a typo or an attack, not a request.
MIN_CPUS = 0.001          # one millicore, the Kubernetes granularity
MAX_CPUS = 1_000_000.0
MAX_MEMORY_MIB = 2 ** 40  # 1 EiB
MAX_DISK_KIB = 2 ** 50    # 1 EiB
MAX_GPUS = 1_000_000
MAX_MICS = 1_000_000
MAX_RUNTIME_SECONDS = 10 ** 10  # about 300 years


T = TypeVar("T")


def parse_submit_ad(text: str) -> JobRequest:
    """Translate the submit ad of BLAH_JOB_SUBMIT; raise JobAdError (only) when it is unusable."""
    try:
        return _request_from_ad(_parse_ad(text))
    except JobAdError:
        raise
    except Exception as err:  # classad2 or a case not foreseen: still a one-sentence answer
        log.debug("submit ad rejected by an unexpected %s", type(err).__name__, exc_info=True)
        raise JobAdError("The submit ad could not be interpreted.") from None


def parse_output_remaps(text: str) -> tuple[tuple[str, str], ...]:
    """`TransferOutputRemaps` as HTCondor reads it (filename_tools.cpp, filename_remap_find).

    Entries `name = dest` are separated by `;`; tabs and newlines are dropped; each side is
    trimmed; a backslash escapes the delimiter being looked for (`\\=` in a name, `\\;` in a
    destination) and is kept before any other character. An entry without `=` is skipped,
    as HTCondor skips it.
    """
    buffer = text.replace("\t", "").replace("\n", "")
    remaps: list[tuple[str, str]] = []
    position = 0
    while position < len(buffer):
        name, name_end = _copy_upto(buffer, position, "=")
        if name_end is None:
            break  # trailing text without '=': ignored
        if ";" in name:  # a field without '=' before this one: skip just that field
            position = buffer.index(";", position) + 1
            continue
        destination, dest_end = _copy_upto(buffer, name_end + 1, ";")
        if name:
            remaps.append((name, destination))
        if dest_end is None:
            break
        position = dest_end + 1
    return tuple(remaps)


def _copy_upto(text: str, start: int, delimiter: str) -> tuple[str, Optional[int]]:
    """(trimmed text up to the unescaped delimiter, index of the delimiter or None at the end)."""
    out: list[str] = []
    i = start
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] == delimiter:
            out.append(delimiter)
            i += 2
            continue
        if char == delimiter:
            return "".join(out).strip(), i
        out.append(char)
        i += 1
    return "".join(out).strip(), None


# ---------------------------------------------------------------------------------------------
# Reading the ad


def _parse_ad(text: str) -> classad2.ClassAd:
    if not isinstance(text, str):
        raise JobAdError("The submit ad is not text.")
    if "\x00" in text:
        raise JobAdError("The submit ad contains a NUL character.")
    if not text.lstrip().startswith("["):
        raise JobAdError("The submit ad is not a ClassAd in new syntax ('[ Name = value; ... ]').")
    try:
        ad = classad2.parseOne(text, classad2.ParserType.New)
    except Exception:
        raise JobAdError("The submit ad could not be parsed as a ClassAd.") from None
    if not list(ad.keys()):  # classad2 answers a syntax error with an empty ad
        raise JobAdError("The submit ad could not be parsed as a ClassAd (or it is empty).")
    return ad


class _Failed:
    """An attribute whose evaluation raised."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class _Ad:
    """Case-insensitive, evaluated access to the submit ad and its unwound CERequirements."""

    def __init__(self, ad: classad2.ClassAd, ce_attributes: dict[str, Scalar]) -> None:
        self.ad = ad
        self.ce = {name.lower(): value for name, value in ce_attributes.items()}
        # Every attribute evaluated once, up front: ~35 names are asked and most are absent,
        # and classad2 answers an absent name through a KeyError (Mapping.__contains__), then
        # a present one through lookup and eval again; the scalar attributes need every value
        # anyway. (name as written, value or the exception its evaluation raised)
        self.evaluated: list[tuple[str, object]] = []
        self.by_name: dict[str, object] = {}
        for key in ad.keys():
            try:
                value: object = ad.eval(key)
            except Exception as exc:  # raised if and when the attribute is asked for
                value = _Failed(exc)
            self.evaluated.append((key, value))
            if key.isascii():     # ClassAd folds the case of ASCII letters only
                self.by_name[key.lower()] = value

    def value(self, name: str) -> object:
        """The evaluated value, or None when absent or undefined; `error` is a JobAdError."""
        value = self.by_name.get(name.lower())
        if value is None:
            return None
        if isinstance(value, _Failed):
            raise value.error
        if value is classad2.Value.Undefined:
            return None
        if value is classad2.Value.Error:
            raise JobAdError(f"{name} evaluates to an error.")
        return value

    def first(self, names: tuple[str, ...], with_ce: bool = False) -> tuple[Optional[str], object]:
        """(name, value) of the first present attribute, then of the first present CE entry."""
        for name in names:
            value = self.value(name)
            if value is not None:
                return name, value
        if with_ce:
            for name in names:
                if name.lower() in self.ce:
                    return f"{name} (in CERequirements)", self.ce[name.lower()]
        return None, None


def _request_from_ad(ad: classad2.ClassAd) -> JobRequest:
    ce_attributes = unwind(ad)
    job = _Ad(ad, ce_attributes)

    iwd = _required_string(job, "Iwd")
    if not iwd.startswith("/"):
        raise JobAdError("Iwd must be an absolute path.")
    stage_cmd = _optional_or(job, "StageCmd", _as_bool, True)
    cmd = _required_string(job, "Cmd")
    if stage_cmd and not cmd.startswith("/"):
        cmd = posixpath.join(iwd, cmd)  # what the gridmanager would have done
    proxy = _optional(job, "x509userproxy", _as_line)
    if proxy is not None and not proxy.startswith("/"):
        proxy = posixpath.join(iwd, proxy)
    stdin = _optional(job, "In", _as_line)

    cpu_name, cpu_value = _cpu_request(job)
    return JobRequest(
        job_directory=_required_string(job, "JobDirectory"),
        cmd=cmd,
        iwd=iwd,
        stage_cmd=stage_cmd,
        arguments=job_arguments(_optional(job, "Arguments", _as_text),
                                _optional(job, "Args", _as_text)),
        environment=job_environment(_optional(job, "Environment", _as_text),
                                    _optional(job, "Env", _as_text),
                                    _optional(job, "EnvDelim", _as_line)),
        stdin=None if stdin == NO_STDIN else stdin,
        stdout=_optional(job, "Out", _as_line),
        stderr=_optional(job, "Err", _as_line),
        transfer_input=_file_list(job, "TransferInput") or (),
        transfer_output=_file_list(job, "TransferOutput"),
        output_remaps=_remaps(job),
        x509userproxy=proxy,
        image=_first_of(job, IMAGE_ATTRIBUTES, _as_image),
        namespace=_first_of(job, NAMESPACE_ATTRIBUTES, _as_namespace),
        cpus=_cpus(cpu_name, cpu_value) if cpu_name else 1,
        cpus_explicit=cpu_name is not None,
        memory_mib=_first_of(job, ("RequestMemory",), _whole_number(MAX_MEMORY_MIB)),
        disk_kib=_first_of(job, ("RequestDisk",), _whole_number(MAX_DISK_KIB)),
        gpus=_first_of(job, ("GPUNumber",), _whole_number(MAX_GPUS)) or 0,
        gpu_model=_first_of(job, ("GPUModel",), _as_line),
        gpu_mode=_first_of(job, ("GPUMode",), _as_gpu_mode),
        mics=_first_of(job, ("MICNumber",), _whole_number(MAX_MICS)) or 0,
        runtime_seconds=_optional(job, "BatchRuntime", _whole_number(MAX_RUNTIME_SECONDS)) or None,
        queue=_optional(job, "Queue", _as_line),
        project=_optional(job, "BatchProject", _as_line),
        whole_node=_optional_or(job, "WholeNodes", _as_bool, False),
        extra_submit_args=_optional(job, "BatchExtraSubmitArgs", _as_text),
        ce_attributes=ce_attributes,
        attributes=_scalar_attributes(job.evaluated),
    )


def _optional(job: _Ad, name: str,
              convert: Callable[[str, object], Optional[T]]) -> Optional[T]:
    value = job.value(name)
    return None if value is None else convert(name, value)


def _optional_or(job: _Ad, name: str, convert: Callable[[str, object], Optional[T]],
                 default: T) -> T:
    value = _optional(job, name, convert)
    return default if value is None else value


def _first_of(job: _Ad, names: tuple[str, ...],
              convert: Callable[[str, object], Optional[T]]) -> Optional[T]:
    found_as, value = job.first(names, with_ce=True)
    return None if found_as is None else convert(found_as, value)


def _required_string(job: _Ad, name: str) -> str:
    value = job.value(name)
    if value is None:
        raise JobAdError(f"{name} is missing from the submit ad.")
    text = _as_line(name, value)
    if text is None:
        raise JobAdError(f"{name} must not be empty.")
    return text


def _cpu_request(job: _Ad) -> tuple[Optional[str], object]:
    name, value = job.first(CPU_ATTRIBUTES[:1], with_ce=True)
    if name is None:
        name, value = job.first(CPU_ATTRIBUTES[1:])
    return name, value


def _cpus(name: str, value: object) -> float:
    number = _as_number(name, value)
    if number < MIN_CPUS:
        raise JobAdError(f"{name} must be at least {MIN_CPUS} CPUs (got {number:g}).")
    if number > MAX_CPUS:
        raise JobAdError(f"{name} is implausibly large (got {number:g}, limit {MAX_CPUS:g}).")
    return number


def _file_list(job: _Ad, name: str) -> Optional[tuple[str, ...]]:
    value = job.value(name)
    if value is None:
        return None
    text = _as_string(name, value)
    entries = tuple(entry.strip() for entry in text.split(","))
    kept = tuple(entry for entry in entries if entry)
    for entry in kept:
        _check_line(name, entry)
    return kept


def _remaps(job: _Ad) -> tuple[tuple[str, str], ...]:
    text = _optional(job, "TransferOutputRemaps", _as_text)
    if text is None:
        return ()
    remaps = parse_output_remaps(text)
    for source, destination in remaps:
        _check_line("TransferOutputRemaps", source)
        _check_line("TransferOutputRemaps", destination)
    return remaps


def _scalar_attributes(evaluated: list[tuple[str, object]]) -> dict[str, Scalar]:
    scalars: dict[str, Scalar] = {}
    for name, value in evaluated:
        if isinstance(value, _Failed):  # one odd attribute must not sink the job; not offered
            continue
        if isinstance(value, classad2.Value):  # undefined/error; an IntEnum, so checked first
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if isinstance(value, (str, bool, int, float)):
            scalars[name.lower()] = value
    return scalars
