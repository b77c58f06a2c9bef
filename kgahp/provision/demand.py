"""Demand: which idle jobs each shape could run, judged by ClassAd matchmaking. Pure.

A job counts for a shape when `classad2` says the two match both ways: the job's Requirements
with the shape's machine ad as TARGET, and the shape's START with the job as TARGET. So a job
that cannot run on a shape (a GPU job and a CPU shape, a job whose Requirements nothing meets)
never asks for it.

Ten thousand idle jobs are usually a few dozen kinds. Jobs are grouped first, as the schedd's
autoclusters do: two jobs with the same Requirements text and the same values of every job
attribute the match can read (the attributes the Requirements refer to, those the shapes' START
refers to, and what those refer to in turn) match the same shapes, so each group is matched once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Optional

import classad2

IDLE = 1
VANILLA = 5


@dataclass(frozen=True)
class JobGroup:
    ad: classad2.ClassAd      # one job of the group, the one matched
    count: int


@dataclass(frozen=True)
class ShapeDemand:
    idle: int = 0              # idle jobs this shape can run
    share: float = 0.0         # its share of them: a job k shapes can run counts 1/k for each


@dataclass(frozen=True)
class Demand:
    shapes: dict[str, ShapeDemand] = field(default_factory=dict)
    jobs: int = 0              # idle jobs considered
    unmatched: int = 0         # of those, jobs no shape can run
    groups: int = 0            # distinct kinds of job among them


def _value_text(ad: classad2.ClassAd, name: str) -> Optional[str]:
    try:
        return str(ad.lookup(name))
    except KeyError:
        return None


def job_key(ad: classad2.ClassAd, target_refs: Sequence[str]) -> str:
    """Text that is equal for two jobs only if every shape matches both or neither."""
    try:
        requirements = ad.lookup("Requirements")
    except KeyError:
        requirements = None
    parts = [str(requirements) if requirements is not None else ""]
    seen: set[str] = set()
    pending = [r for r in target_refs]
    if requirements is not None:
        pending += ad.internalRefs(requirements)
    while pending:
        name = pending.pop()
        lowered = name.lower()
        if lowered in seen:
            continue
        seen.add(lowered)
        text = _value_text(ad, name)
        parts.append(f"{lowered}={text}")
        if text is not None:
            pending += ad.internalRefs(ad.lookup(name))
    parts[1:] = sorted(parts[1:])
    return "\x00".join(parts)


def is_idle_job(ad: classad2.ClassAd, constraint: Optional[classad2.ExprTree] = None) -> bool:
    """An idle vanilla-universe job that meets the admin's constraint."""
    if ad.get("JobStatus") != IDLE or ad.get("JobUniverse", VANILLA) != VANILLA:
        return False
    return constraint is None or constraint.eval(ad) is True


def group_jobs(jobs: Iterable[classad2.ClassAd], target_refs: Sequence[str],
               constraint: Optional[classad2.ExprTree] = None) -> list[JobGroup]:
    """The idle jobs, grouped by `job_key`, in order of first appearance."""
    groups: dict[str, list] = {}
    for ad in jobs:
        if not is_idle_job(ad, constraint):
            continue
        key = job_key(ad, target_refs)
        entry = groups.get(key)
        if entry is None:
            groups[key] = [ad, 1]
        else:
            entry[1] += 1
    return [JobGroup(ad, count) for ad, count in groups.values()]


def match_groups(groups: Sequence[JobGroup],
                 machines: Sequence[tuple[str, classad2.ClassAd]]) -> Demand:
    """Per shape: how many idle jobs it can run and its share of them."""
    idle = {name: 0 for name, _ in machines}
    share = {name: 0.0 for name, _ in machines}
    jobs = unmatched = 0
    for group in groups:
        jobs += group.count
        fits = [name for name, machine in machines if group.ad.symmetricMatch(machine)]
        if not fits:
            unmatched += group.count
            continue
        for name in fits:
            idle[name] += group.count
            share[name] += group.count / len(fits)
    return Demand({name: ShapeDemand(idle[name], share[name]) for name in idle},
                  jobs=jobs, unmatched=unmatched, groups=len(groups))


def demand(jobs: Iterable[classad2.ClassAd], machines: Sequence[tuple[str, classad2.ClassAd]],
           target_refs: Sequence[str] = (),
           constraint: Optional[classad2.ExprTree] = None) -> Demand:
    """Group the idle jobs and match each group against every shape's machine ad.
    `target_refs`: the job attributes the shapes' START expressions read (machine.start_refs)."""
    return match_groups(group_jobs(jobs, target_refs, constraint), machines)
