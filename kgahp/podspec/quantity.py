"""Kubernetes resource quantities written as the API parses them: integers, no exponents."""

from __future__ import annotations

import math


def cpu_millicores(cpus: float) -> int:
    """CPUs rounded to whole millicores (the API's precision); at least 1m for any positive ask."""
    if not math.isfinite(cpus) or cpus < 0:
        raise ValueError(f"CPU count {cpus!r} is not a finite non-negative number")
    milli = round(cpus * 1000)
    return max(milli, 1) if cpus > 0 else 0


def format_cpu(cpus: float) -> str:
    """`2` for two CPUs, `1500m` for one and a half."""
    milli = cpu_millicores(cpus)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def format_millicores(milli: int) -> str:
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def format_mebibytes(mib: float) -> str:
    return f"{_whole(mib, 'memory')}Mi"


def format_kibibytes(kib: float) -> str:
    return f"{_whole(kib, 'disk')}Ki"


def _whole(value: float, what: str) -> int:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} amount {value!r} is not a finite non-negative number")
    return math.ceil(value)
