"""How many pilots each shape should create or remove this cycle. Pure: numbers in, numbers out.

Per shape, with demand D (idle jobs it can run), S (its share of them), P pending (not yet in
the pool), I idle and B busy pilots:

- want waiting = 0 without demand, else min(D, ceil(S / attenuation) + reserve): pilots kept
  waiting for work (pending or idle), attenuated so a burst of idle jobs is answered in steps;
- target = B + want waiting, at most the shape's cap (never below B: busy pilots stay);
- create = target - (P + I + B), then: at most D - P (never more pending pilots than idle jobs
  that match), at most the shape's headroom, halved (rounded up) once the shape holds more than
  curb x its cap; nothing during a backoff after failures, one probe pilot once it has passed;
- remove = waiting pilots beyond want waiting, only among those unclaimed (or pending) for
  longer than the grace; busy pilots are never removed.

Then across shapes: the global cap and its curb, never more pending pilots in all than idle jobs
any shape can run, and the creation budget of the rate limit, handed out one pilot at a time to
the shape with the most still wanted (ties: list order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Optional

from kgahp.provision.demand import ShapeDemand
from kgahp.provision.supply import ShapeSupply


@dataclass(frozen=True)
class Limits:
    attenuation: float = 3.0
    reserve: int = 1
    max_pilots: int = 100          # global cap
    curb: float = 0.8
    backoff: float = 60.0
    backoff_max: float = 3600.0


@dataclass(frozen=True)
class ShapeState:
    name: str
    cap: int
    demand: ShapeDemand
    supply: ShapeSupply
    removable: int = 0             # waiting pilots unclaimed (or pending) past the grace


@dataclass(frozen=True)
class Decision:
    shape: str
    target: int
    create: int
    remove: int
    reason: str

    @property
    def action(self) -> str:
        if self.create:
            return f"create {self.create}"
        if self.remove:
            return f"remove {self.remove}"
        return "none"


def backoff_until(supply: ShapeSupply, limits: Limits) -> Optional[float]:
    """When the shape may try again after its failures on record (None: no failures)."""
    if not supply.failed or supply.last_failure is None:
        return None
    delay = min(limits.backoff_max, limits.backoff * 2 ** min(supply.failed - 1, 30))
    return supply.last_failure + delay


def want_waiting(demand: ShapeDemand, limits: Limits) -> int:
    if demand.idle <= 0 or demand.share <= 0:
        return 0
    attenuated = math.ceil(demand.share / max(limits.attenuation, 1e-9) - 1e-9)
    return min(demand.idle, max(1, attenuated) + max(0, limits.reserve))


def _halve(n: int) -> int:
    return (n + 1) // 2


def decide_shape(state: ShapeState, limits: Limits, now: float) -> Decision:
    supply, demand = state.supply, state.demand
    waiting = want_waiting(demand, limits)
    target = max(supply.busy, min(state.cap, supply.busy + waiting))
    create = max(0, target - supply.total)
    notes: list[str] = []
    if supply.busy + waiting > state.cap:
        notes.append(f"target held to the shape cap {state.cap}")
    if create:
        room = max(0, demand.idle - supply.pending)
        if create > room:
            create = room
            notes.append(f"pending pilots already match the {demand.idle} idle jobs")
        headroom = max(0, state.cap - supply.total)
        if create > headroom:
            create = headroom
        if create and supply.total >= limits.curb * state.cap:
            create = _halve(create)
            notes.append(f"halved near the shape cap {state.cap}")
    until = backoff_until(supply, limits)
    if create and until is not None:
        if now < until:
            why = supply.failure_reason or "pilots failed"
            return Decision(state.name, target, 0, 0,
                            f"backoff {math.ceil(until - now)}s after {supply.failed} failed "
                            f"pilot(s): {why}")
        if supply.pending:
            return Decision(state.name, target, 0, 0, "waiting for the probe pilot to start")
        create = 1
        notes.append("one probe pilot after failures")
    remove = 0
    excess = supply.pending + supply.idle - waiting
    if not create and excess > 0:
        remove = min(excess, state.removable)
        notes.append(f"{excess} more waiting than wanted; {remove} unclaimed past the grace"
                     if remove < excess else "unclaimed past the grace")
    if create and not notes:
        notes.append(f"{waiting} waiting pilot(s) wanted for a share of {demand.share:g} "
                     "idle jobs")
    if not notes:
        notes.append("no idle jobs match" if demand.idle == 0 else "enough pilots")
    return Decision(state.name, target, create, remove, "; ".join(notes))


def decide(states: Sequence[ShapeState], limits: Limits, *, now: float, budget: int,
           matched_jobs: Optional[int] = None) -> list[Decision]:
    """Every shape's decision, with the global cap and the creation budget applied.
    `matched_jobs`: idle jobs some shape can run; pending pilots of all shapes together never
    outnumber them (a job several shapes can run is counted by each shape alone)."""
    decisions = [decide_shape(s, limits, now) for s in states]
    total = sum(s.supply.total for s in states)
    if matched_jobs is not None:
        budget = min(budget, max(0, matched_jobs - sum(s.supply.pending for s in states)))
    wanted = [d.create for d in decisions]
    if sum(wanted) and total >= limits.curb * limits.max_pilots:
        wanted = [_halve(n) for n in wanted]
        decisions = [replace(d, reason=d.reason + f"; halved near the global cap "
                             f"{limits.max_pilots}") if d.create else d for d in decisions]
    allowance = min(max(0, limits.max_pilots - total), max(0, budget))
    granted = [0] * len(states)
    while allowance > 0:
        best = max(range(len(states)), key=lambda i: (wanted[i] - granted[i], -i),
                   default=None)
        if best is None or wanted[best] - granted[best] <= 0:
            break
        granted[best] += 1
        allowance -= 1
    out = []
    for decision, want, got in zip(decisions, wanted, granted):
        if got < decision.create:
            limit = ("the global cap" if limits.max_pilots - total <= budget
                     else "the creation rate limit or the idle jobs")
            reason = f"{decision.reason}; {got} of {want} for {limit}" if got < want else \
                decision.reason
            decision = replace(decision, create=got, reason=reason)
        out.append(decision)
    return out
