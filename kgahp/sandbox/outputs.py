"""Bring the output sandbox back from the pod log into Iwd, safely.

Where each archive member goes is decided here from the job ad (Out, Err, TransferOutput,
TransferOutputRemaps), never by the member's own name: members outside that mapping are ignored,
members that are absolute, climb with `..`, or are devices/hard links reject the whole archive, and
symbolic links are never created. Nothing is written until the whole archive has been checked;
then each file goes to a temp file beside its destination and is renamed into place.

TransferOutput unset: every new or modified regular file at the top of the sandbox comes back
(as HTCondor does by default); directories only when named in TransferOutput.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass

from kgahp.config import TransferSettings
from kgahp.errors import TransferError
from kgahp.model import JobRequest
from kgahp.sandbox import wrapper
from kgahp.sandbox.safepath import (
    CONTROL_DIR,
    clean_relative,
    is_null_device,
    relative_to_iwd,
    safe_destination,
    submit_path,
)

log = logging.getLogger(__name__)

STDOUT_MEMBER = f"{CONTROL_DIR}/stdout"
STDERR_MEMBER = f"{CONTROL_DIR}/stderr"
UNPACK_FACTOR = 64   # unpacked outputs may be this many times KGAHP_MAX_OUTPUT_BYTES
_ENCODINGS = ("tar", "tgz", "empty")   # tarfile tells tar from tgz by itself


def output_entries(req: JobRequest) -> tuple[str, ...] | None:
    """TransferOutput cleaned to sandbox-relative names; None means HTCondor's default."""
    if req.transfer_output is None:
        return None
    entries = []
    for entry in req.transfer_output:
        name = clean_relative(entry, "TransferOutput entry")
        if name == CONTROL_DIR or name.startswith(CONTROL_DIR + "/"):
            raise TransferError(f"TransferOutput entry {entry!r} uses the name {CONTROL_DIR}, "
                                "which kgahp reserves")
        entries.append(name)
    return tuple(dict.fromkeys(entries))


def _too_large(size: int, limit: int) -> TransferError:
    return TransferError(f"output sandbox of {size} bytes exceeds the limit of {limit} bytes "
                         "(KGAHP_MAX_OUTPUT_BYTES)")


@dataclass(frozen=True)
class Frame:
    encoding: str
    archive: bytes


def parse_frame(log_text: str, max_bytes: int) -> Frame:
    """The verified archive from the last frame in a container log. Pure."""
    lines = [line.rstrip("\r") for line in log_text.split("\n")]
    markers = (wrapper.BEGIN, wrapper.TOO_LARGE, wrapper.ERROR)
    starts = [i for i, line in enumerate(lines) if line.split(" ", 1)[0] in markers]
    if not starts:
        raise TransferError("the pod's log holds no output sandbox: the job wrapper did not "
                            "finish (container killed, or the log was lost)")
    start = starts[-1]
    fields = lines[start].split()
    if fields[0] == wrapper.ERROR:
        raise TransferError("the job's outputs could not be packed in the pod: "
                            + " ".join(fields[1:])[:200])
    if fields[0] == wrapper.TOO_LARGE:
        try:
            raise _too_large(int(fields[1]), int(fields[2]))
        except (IndexError, ValueError):
            raise TransferError("the output sandbox exceeds KGAHP_MAX_OUTPUT_BYTES") from None
    if len(fields) != 5 or fields[1] != wrapper.FRAME_VERSION or fields[4] not in _ENCODINGS:
        raise TransferError("the output sandbox frame in the pod's log is not understood")
    try:
        size = int(fields[2])
    except ValueError:
        raise TransferError("the output sandbox frame in the pod's log is corrupt") from None
    if max_bytes and size > max_bytes:
        raise _too_large(size, max_bytes)
    try:
        end = lines.index(wrapper.END, start + 1)
    except ValueError:
        raise TransferError(f"the output sandbox in the pod's log is truncated (expected {size} "
                            "bytes, no end marker)") from None
    try:
        archive = base64.b64decode("".join(lines[start + 1:end]), validate=True)
    except (binascii.Error, ValueError):
        raise TransferError("the output sandbox in the pod's log is corrupt (bad base64)") from None
    if len(archive) != size:
        raise TransferError(f"the output sandbox in the pod's log is truncated ({len(archive)} of "
                            f"{size} bytes)")
    if fields[3] != "-" and hashlib.sha256(archive).hexdigest() != fields[3].lower():
        raise TransferError("the output sandbox in the pod's log is corrupt (sha256 mismatch)")
    return Frame(fields[4], archive)


@dataclass(frozen=True)
class Write:
    dest: str                          # absolute destination path
    member: tarfile.TarInfo | None     # None: a directory to create
    mode: int = 0o644


@dataclass(frozen=True)
class Plan:
    archive: tarfile.TarFile | None
    writes: tuple[Write, ...]


class _Mapper:
    """Archive member name -> destination, from the job ad alone."""

    def __init__(self, req: JobRequest) -> None:
        self.req = req
        self.entries = output_entries(req)
        self.remaps = dict(req.output_remaps)

    def _remapped(self, name: str) -> str:
        dest = self.remaps.get(name) or self.remaps.get(os.path.basename(name))
        if dest is None:
            return os.path.basename(name)
        if "://" in dest:
            raise TransferError(f"TransferOutputRemaps destination {dest!r} is a URL; "
                                "kgahp writes only into Iwd")
        return relative_to_iwd(self.req.iwd, dest, "TransferOutputRemaps destination")

    def destination(self, name: str) -> str | None:
        if name in (STDOUT_MEMBER, STDERR_MEMBER):
            stream = self.req.stdout if name == STDOUT_MEMBER else self.req.stderr
            return None if is_null_device(stream) else submit_path(self.req.iwd, str(stream))
        if self.entries is None:
            if "/" in name:
                return None
            return safe_destination(self.req.iwd, self._remapped(name), "output file")
        for entry in self.entries:
            if name == entry or name.startswith(entry + "/"):
                rel = self._remapped(entry) + name[len(entry):]
                return safe_destination(self.req.iwd, rel, "output file")
        return None


def _members(archive: tarfile.TarFile) -> list[tuple[str, tarfile.TarInfo]]:
    out = []
    for member in archive.getmembers():
        name = clean_relative(member.name, "archive member")
        if not (member.isfile() or member.isdir() or member.issym()):
            raise TransferError(f"archive member {member.name!r} is a device, FIFO or hard link; "
                                "refusing the output sandbox")
        out.append((name, member))
    return out


def _unpacked_limit(max_bytes: int) -> int:
    return max_bytes * UNPACK_FACTOR if max_bytes else 0


def plan_writes(frame: Frame, req: JobRequest, max_bytes: int = 0) -> Plan:
    """Check the whole archive and decide every write. Reads Iwd (symlinks), writes nothing.

    Only member headers are read here; contents are streamed to disk later. The unpacked total
    is capped at UNPACK_FACTOR x `max_bytes` so a compression bomb cannot fill Iwd.
    """
    if frame.encoding == "empty":
        members: list[tuple[str, tarfile.TarInfo]] = []
        archive = None
    else:
        try:
            archive = tarfile.open(fileobj=io.BytesIO(frame.archive), mode="r:*")
            members = _members(archive)
        except (tarfile.TarError, EOFError, OSError):
            raise TransferError("the output sandbox archive cannot be read") from None
    mapper = _Mapper(req)
    writes: list[Write] = []
    seen: set[str] = set()
    for name, member in members:
        dest = mapper.destination(name)
        if dest is None:
            log.debug("output archive member %r is not a requested output; ignored", name)
            continue
        if member.issym():
            log.warning("output %r is a symbolic link; kgahp does not create links", name)
            continue
        seen.add(name)
        if member.isdir():
            writes.append(Write(dest, None))
            continue
        writes.append(Write(dest, member, 0o755 if member.mode & 0o111 else 0o644))
    for entry in mapper.entries or ():
        if entry not in seen:
            raise TransferError(f"output file {entry!r} named in TransferOutput was not "
                                "produced by the job (or is a symbolic link)")
    unpacked = sum(w.member.size for w in writes if w.member is not None)
    limit = _unpacked_limit(max_bytes)
    if limit and unpacked > limit:
        raise TransferError(f"output sandbox unpacks to {unpacked} bytes, more than "
                            f"{UNPACK_FACTOR} x KGAHP_MAX_OUTPUT_BYTES ({limit} bytes)")
    return Plan(archive, tuple(writes))


def _write_atomically(archive: tarfile.TarFile | None, write: Write) -> None:
    if write.member is None or archive is None:
        os.makedirs(write.dest, exist_ok=True)
        return
    source = archive.extractfile(write.member)
    parent = os.path.dirname(write.dest)
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=".kgahp-partial-")
    try:
        with os.fdopen(fd, "wb") as fh:
            if source is not None:
                shutil.copyfileobj(source, fh)
            os.fchmod(fh.fileno(), write.mode)
        os.replace(tmp, write.dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def extract_outputs(log_text: str, req: JobRequest, transfer: TransferSettings) -> list[str]:
    """Unpack the framed output sandbox from `log_text` into Iwd; returns the paths written.

    TransferError (nothing written) if the frame is missing, truncated, corrupt or too large, if
    the archive is hostile, or if a TransferOutput entry is missing. Only for api mode; other
    modes have nothing to bring back and return [].
    """
    if transfer.mode != "api":
        return []
    limit = transfer.max_output_bytes
    plan = plan_writes(parse_frame(log_text, limit), req, limit)
    written = []
    for write in plan.writes:
        try:
            _write_atomically(plan.archive, write)
        except OSError as exc:
            raise TransferError(f"output file {write.dest} cannot be written: "
                                f"{exc.strerror}") from None
        except (tarfile.TarError, EOFError):
            raise TransferError("the output sandbox archive is damaged") from None
        if write.member is not None:
            written.append(write.dest)
    log.info("job %s: %d output file(s) written into %s", req.job_directory, len(written),
             req.iwd)
    return written


_TIMES = re.compile(r"(\d+)m\s*(\d+(?:\.\d*)?)s")
_UNITS = {"usec": 1e-6, "nsec": 1e-9, "tick": 0.01}   # cgroup v1 cpuacct.stat: USER_HZ = 100


@dataclass(frozen=True)
class CpuUsage:
    user: float      # seconds
    system: float
    source: str      # cgroup2, cgroup1 or times


def cpu_usage(log_text: str) -> CpuUsage | None:
    """The CPU the job used, from the wrapper's last `KGAHP-CPU` line before any output frame;
    None when there is none or it is not understood (the job then reports no CPU). Pure."""
    found: CpuUsage | None = None
    lines = log_text.split("\n")
    for i, line in enumerate(lines):
        fields = line.rstrip("\r").split()
        if not fields:
            continue
        if fields[0] in (wrapper.BEGIN, wrapper.TOO_LARGE, wrapper.ERROR):
            break            # the wrapper prints its CPU line before packing outputs
        if fields[0] != wrapper.CPU or len(fields) < 3 or fields[1] != "1":
            continue
        values = fields[3:]
        if fields[2] == "times" and i + 1 < len(lines):
            values += lines[i + 1].split()     # `times` prints the children on a second line
        found = _cpu_fields(fields[2], values)
    return found


def _cpu_fields(source: str, values: list[str]) -> CpuUsage | None:
    try:
        if source in ("cgroup2", "cgroup1") and len(values) == 3 and values[2] in _UNITS:
            scale = _UNITS[values[2]]
            user, system = int(values[0]) * scale, int(values[1]) * scale
        elif source == "times":
            spans = [int(m) * 60 + float(s) for m, s in _TIMES.findall(" ".join(values))]
            if len(spans) != 4:
                return None
            user, system = spans[0] + spans[2], spans[1] + spans[3]
        else:
            return None
    except ValueError:
        return None
    if not (0 <= user < 1e9 and 0 <= system < 1e9):
        return None
    return CpuUsage(round(user, 3), round(system, 3), source)


def make_frame(files: dict[str, bytes]) -> str:
    """A log text as the wrapper would print it for `files` (member name -> content). Pure.

    For simulators and demos, which run no real container: use STDOUT_MEMBER / STDERR_MEMBER for
    the job's streams and sandbox-relative names for output files.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    archive = buf.getvalue()
    body = base64.encodebytes(archive).decode("ascii")
    return (f"{wrapper.BEGIN} {wrapper.FRAME_VERSION} {len(archive)} "
            f"{hashlib.sha256(archive).hexdigest()} tgz\n{body}{wrapper.END}\n")
