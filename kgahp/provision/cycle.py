"""One provisioning cycle: read demand and supply, decide, act, and report one line per shape.

Nothing is remembered between cycles except the creation budget: the pilots' state is read
from the cluster (their labels and status) and the pool each time, so a restarted provisioner
sees the pilots its predecessor created and creates no duplicates.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional

import classad2

from kgahp.config import Settings
from kgahp.errors import KgahpError
from kgahp.kube.api import Kube
from kgahp.podspec.templates import Templates
from kgahp.provision import demand as demand_mod
from kgahp.provision import snapshots, supply, target
from kgahp.provision.actuate import Actions, Actuator, removable, stale, wanted_cost
from kgahp.provision.machine import machine_ad, start_refs
from kgahp.provision.pilots import pilot_namespace, pilot_pod
from kgahp.provision.shapes import Shape

log = logging.getLogger(__name__)

COLUMNS = ("SHAPE", "IDLE JOBS", "PENDING", "IDLE PILOTS", "BUSY", "TARGET", "ACTION", "WHY")


@dataclass(frozen=True)
class Row:
    shape: str
    idle_jobs: int
    pending: int
    idle_pilots: int
    busy: int
    target: int
    action: str
    reason: str

    def cells(self) -> list[str]:
        return [self.shape, str(self.idle_jobs), str(self.pending), str(self.idle_pilots),
                str(self.busy), str(self.target), self.action, self.reason]

    def log_line(self) -> str:
        return (f"shape {self.shape}: idle matching jobs {self.idle_jobs}, pending "
                f"{self.pending}, idle pilots {self.idle_pilots}, busy pilots {self.busy}, "
                f"target {self.target}, action {self.action} ({self.reason})")


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    actions: Actions = field(default_factory=Actions)
    jobs: int = 0
    unmatched: int = 0
    groups: int = 0


def format_table(report: Report) -> str:
    table = [list(COLUMNS)] + [r.cells() for r in report.rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.append(f"# {report.jobs} idle jobs ({report.groups} kinds), {report.unmatched} match "
                 "no shape")
    return "\n".join(lines) + "\n"


class Provisioner:
    """Holds what stays the same between cycles: shapes, their machine ads, the actuator and
    the creation budget (a token bucket of KGAHP_PROVISION_CREATE_RATE pods per second)."""

    def __init__(self, settings: Settings, shapes: Sequence[Shape], templates: Templates, *,
                 kube: Optional[Kube], jobs_file: Optional[str] = None,
                 startds_file: Optional[str] = None, dry_run: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.shapes = tuple(shapes)
        self.templates = templates
        self.jobs_file = jobs_file
        self.startds_file = startds_file
        self.clock = clock
        self.actuator = Actuator(kube, settings, templates, dry_run=dry_run)
        self.machines = [(s.name, machine_ad(s)) for s in self.shapes]
        refs: set[str] = set()
        for _, ad in self.machines:
            refs.update(start_refs(ad))
        self.target_refs = tuple(sorted(refs))
        self.constraint = snapshots.constraint_expr(settings.provision.job_constraint)
        self.refused: dict[str, str] = {}
        for shape in self.shapes:    # a shape policy refuses is reported, never created
            try:
                pilot_pod(shape, settings, templates, suffix="check")
            except KgahpError as exc:
                self.refused[shape.name] = f"refused: {exc}"
        self.namespaces = sorted({pilot_namespace(s, settings, templates) for s in self.shapes
                                  if s.name not in self.refused})
        p = settings.provision
        self.limits = target.Limits(attenuation=p.attenuation, reserve=p.reserve,
                                    max_pilots=p.max_pilots, curb=p.curb, backoff=p.backoff,
                                    backoff_max=p.backoff_max)
        self.burst = max(1.0, p.create_rate * p.interval)
        self.tokens = self.burst
        self.last_refill = clock()
        self.lifecycle = supply.pilot_lifecycle(settings.lifecycle, p.unschedulable_limit)

    # ---- inputs
    def jobs(self) -> list[classad2.ClassAd]:
        if self.jobs_file:
            return snapshots.read_ads(self.jobs_file)
        return snapshots.live_jobs(self.settings.provision)

    def startds(self) -> list[classad2.ClassAd]:
        if self.startds_file:
            return snapshots.read_ads(self.startds_file)
        return snapshots.live_startds(self.settings.provision)

    def _budget(self, now: float) -> int:
        rate = self.settings.provision.create_rate
        if rate <= 0:
            return 10**9
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.last_refill) * rate)
        self.last_refill = now
        return int(self.tokens)

    # ---- one cycle
    def cycle(self) -> Report:
        now = self.clock()
        found = demand_mod.demand(self.jobs(), self.machines, self.target_refs, self.constraint)
        pods = self.actuator.list_pilots(self.namespaces)
        ads = self.startds() if pods else []    # no pilots: no startd of theirs to ask about
        pilots = supply.classify_all(pods, ads, now=now, settings=self.lifecycle)
        names = [s.name for s in self.shapes]
        supplies = supply.summarize(pilots, names, backoff_max=self.limits.backoff_max, now=now)
        grace = self.settings.provision.idle_grace
        states = []
        for shape in self.shapes:
            cap = shape.max_pilots if shape.max_pilots is not None else \
                self.settings.provision.max_pilots_per_shape
            if shape.name in self.refused:
                cap = 0
            states.append(target.ShapeState(
                shape.name, cap, found.shapes[shape.name], supplies[shape.name],
                removable=len(removable(pilots, shape.name, now=now, grace=grace))))
        decisions = target.decide(states, self.limits, now=now, budget=self._budget(now),
                                  matched_jobs=found.jobs - found.unmatched)
        report = Report(jobs=found.jobs, unmatched=found.unmatched, groups=found.groups)
        for shape, state, decision in zip(self.shapes, states, decisions):
            reason = self.refused.get(shape.name, decision.reason)
            self._act(shape, decision, pilots, report.actions, now)
            row = Row(shape.name, state.demand.idle, state.supply.pending, state.supply.idle,
                      state.supply.busy, decision.target, decision.action, reason)
            report.rows.append(row)
            log.info("%s", row.log_line())
        for pilot in pilots:     # a shape the admin took out of the file: its waiting pilots go
            if pilot.shape not in supplies and pilot.state in (supply.PENDING, supply.STARTING,
                                                               supply.IDLE) \
                    and now - pilot.since >= grace:
                self._safely(report.actions, self.actuator.delete, pilot, report.actions,
                             f"shape {pilot.shape!r} is no longer configured")
        recovered = [n for n, s in supplies.items() if s.recovered]
        for pilot in stale(pilots, now=now, backoff_max=self.limits.backoff_max,
                           recovered=recovered):
            self._safely(report.actions, self.actuator.delete, pilot, report.actions,
                         "ended" if pilot.state == supply.DONE else "failure record expired")
        for pilot in pilots:
            cost = wanted_cost(pilot)
            if cost is not None:
                self._safely(report.actions, self.actuator.annotate, pilot, cost,
                             report.actions)
        return report

    def _act(self, shape: Shape, decision: target.Decision, pilots: list[supply.Pilot],
             actions: Actions, now: float) -> None:
        made = 0
        for _ in range(decision.create):
            if not self._safely(actions, self.actuator.create, shape, actions):
                break    # the next cycle tries again; no burst of failing requests
            made += 1
        self.tokens -= made
        grace = self.settings.provision.idle_grace
        for pilot in removable(pilots, shape.name, now=now, grace=grace)[:decision.remove]:
            self._safely(actions, self.actuator.delete, pilot, actions,
                         f"unclaimed for {math.floor(now - pilot.since)}s and not wanted")

    @staticmethod
    def _safely(actions: Actions, fn: Callable[..., None], *args: object) -> bool:
        try:
            fn(*args)
            return True
        except KgahpError as exc:
            log.warning("%s", exc)
            actions.errors.append(str(exc))
            return False
