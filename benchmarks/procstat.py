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


@dataclass(frozen=True)
class ThreadUse:
    cpu_seconds: float
    voluntary_switches: int     # times the thread slept: waiting for the GIL, a lock or I/O
    threads: int = 1            # how many threads of the kind


def thread_role(comm: str, is_main: bool) -> str:
    """kgahp names its threads (gahp-submit-3, watch-default): the kind, without the number.
    The main thread keeps the process's name; it is kgahp's protocol reader."""
    if is_main:
        return "main (protocol)"
    head, sep, tail = comm.rpartition("-")
    return head if sep and tail.isdigit() else comm


def parse_schedstat_cpu(schedstat_text: str) -> float:
    """Seconds on a CPU from /proc/<pid>/task/<tid>/schedstat: its first field is the
    scheduler's own count in nanoseconds. The tick-based utime/stime of `stat` are rounded
    for each thread, and across ~60 threads that each run a few microseconds at a time
    they came to 15-20% less than the process's total."""
    return int(schedstat_text.split()[0]) / 1e9


def parse_voluntary_switches(status_text: str) -> int:
    for line in status_text.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def thread_usage(pid: int) -> dict[str, ThreadUse]:
    """CPU and voluntary switches of each kind of thread of `pid` (Linux /proc; {} elsewhere).
    A thread that ends between the listing and the read is left out."""
    out: dict[str, ThreadUse] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/comm") as fh:
                comm = fh.read().strip()
            try:
                with open(f"{base}/schedstat") as fh:
                    cpu = parse_schedstat_cpu(fh.read())
            except (OSError, ValueError, IndexError):   # a kernel without schedstat
                with open(f"{base}/stat") as fh:
                    cpu = parse_stat_cpu(fh.read())
            with open(f"{base}/status") as fh:
                switches = parse_voluntary_switches(fh.read())
        except OSError:
            continue
        role = thread_role(comm, tid == str(pid))
        was = out.get(role, ThreadUse(0.0, 0, 0))
        out[role] = ThreadUse(was.cpu_seconds + cpu, was.voluntary_switches + switches,
                              was.threads + 1)
    return out


def usage_between(before: dict[str, ThreadUse],
                  after: dict[str, ThreadUse]) -> dict[str, ThreadUse]:
    """What each kind of thread spent from `before` to `after` (and how many there are now)."""
    zero = ThreadUse(0.0, 0, 0)
    return {role: ThreadUse(use.cpu_seconds - before.get(role, zero).cpu_seconds,
                            use.voluntary_switches - before.get(role, zero).voluntary_switches,
                            use.threads)
            for role, use in after.items()}
