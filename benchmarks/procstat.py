"""CPU time and memory of a process from /proc (Linux): the kgahp process, the sim process."""

from __future__ import annotations

import os
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ProcSample:
    cpu_seconds: float      # user + system, the process's own threads (children excluded)
    rss_bytes: int          # resident now
    peak_rss_bytes: int     # high-water mark since start (VmHWM)


def parse_stat_cpu(stat_text: str, ticks: int = CLOCK_TICKS) -> float:
    """utime + stime seconds from /proc/<pid>/stat. The command name (field 2) may hold spaces
    and parentheses, so fields are counted after its last ')'."""
    rest = stat_text[stat_text.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(rest[11]) + int(rest[12])) / ticks


def parse_status_memory(status_text: str) -> tuple[int, int]:
    """(VmRSS, VmHWM) in bytes from /proc/<pid>/status."""
    values = {}
    for line in status_text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            number, _, unit = rest.strip().partition(" ")
            values[key] = int(number) * (1024 if unit.strip().lower() == "kb" else 1)
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def sample(pid: int) -> ProcSample:
    with open(f"/proc/{pid}/stat") as fh:
        cpu = parse_stat_cpu(fh.read())
    with open(f"/proc/{pid}/status") as fh:
        rss, hwm = parse_status_memory(fh.read())
    return ProcSample(cpu, rss, hwm)


def cpu_count() -> int:
    """Cores this process may use (affinity), which is what the figures depend on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
