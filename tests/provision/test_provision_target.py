"""The pure target: attenuation, reserve, caps, halving, the pending rule, backoff, removal."""

from __future__ import annotations

from typing import Optional

import pytest

from kgahp.provision.demand import ShapeDemand
from kgahp.provision.supply import ShapeSupply
from kgahp.provision.target import Limits, ShapeState, decide, decide_shape

NOW = 1_767_300_000.0
LIMITS = Limits(attenuation=3, reserve=1, max_pilots=1000, curb=0.8, backoff=60,
                backoff_max=3600)


def state(idle: int = 0, share: Optional[float] = None, *, pending: int = 0, idle_p: int = 0,
          busy: int = 0, cap: int = 50, removable: int = 0, failed: int = 0,
          last_failure: Optional[float] = None, name: str = "cpu-1") -> ShapeState:
    return ShapeState(name, cap, ShapeDemand(idle, float(idle if share is None else share)),
                      ShapeSupply(pending=pending, idle=idle_p, busy=busy, failed=failed,
                                  last_failure=last_failure,
                                  failure_reason="ErrImagePull: not found" if failed else ""),
                      removable=removable)


CASES = [
    # (what, state, create, remove, words in the reason)
    ("no demand, no pilots: nothing", state(), 0, 0, "no idle jobs match"),
    ("attenuation and reserve: 30 idle -> 30/3 + 1", state(30), 11, 0, "11 waiting"),
    ("one idle job -> one pilot, the reserve cannot exceed the jobs", state(1), 1, 0, ""),
    ("a share smaller than the jobs (split with another shape)", state(30, 6), 3, 0, ""),
    ("pilots already waiting count", state(30, pending=4, idle_p=5), 2, 0, ""),
    ("busy pilots do not count as waiting", state(30, busy=20), 11, 0, ""),
    ("never more pending than matching idle jobs", state(2, 60, pending=2), 0, 0,
     "enough pilots"),
    ("the shape cap holds the target", state(300, cap=10), 10, 0, "shape cap 10"),
    ("the shape cap holds the target: halved past the curb", state(300, busy=4, idle_p=4,
                                                                   cap=10), 1, 0, "halved"),
    ("the shape cap: busy pilots fill it", state(300, busy=10, cap=10), 0, 0, "cap 10"),
    ("halving past the curb (rounded up)", state(300, busy=40, cap=50), 5, 0,
     "halved near the shape cap"),
    ("within the curb: no halving", state(300, busy=30, cap=50), 20, 0, ""),
    ("backoff after a failure", state(30, failed=1, last_failure=NOW - 10), 0, 0,
     "backoff 50s after 1 failed pilot(s): ErrImagePull"),
    ("backoff doubles per failure", state(30, failed=3, last_failure=NOW - 200), 0, 0,
     "backoff 40s"),
    ("after the backoff: one probe", state(30, failed=1, last_failure=NOW - 61), 1, 0,
     "one probe"),
    ("a probe in flight: wait for it", state(30, pending=1, failed=1,
                                             last_failure=NOW - 61), 0, 0, "probe"),
    ("demand gone: unclaimed pilots past the grace go", state(0, idle_p=4, busy=3,
                                                              removable=4), 0, 4,
     "unclaimed past the grace"),
    ("demand gone: only those past the grace", state(0, idle_p=4, removable=1), 0, 1,
     "4 more waiting than wanted; 1 unclaimed"),
    ("demand fell: the excess goes", state(3, idle_p=6, removable=6), 0, 4, ""),
    ("busy pilots are never removed", state(0, busy=7, removable=0), 0, 0, ""),
]


@pytest.mark.parametrize("what, st, create, remove, words", CASES, ids=[c[0] for c in CASES])
def test_one_shape(what: str, st: ShapeState, create: int, remove: int, words: str) -> None:
    got = decide_shape(st, LIMITS, NOW)
    assert (got.create, got.remove) == (create, remove), (what, got)
    assert words in got.reason, got.reason
    assert got.target >= st.supply.busy
    assert st.supply.pending + got.create <= max(st.demand.idle, st.supply.pending)
    assert st.supply.total + got.create <= max(st.cap, st.supply.total)


def test_the_global_cap_is_shared_by_the_shapes_that_want_most() -> None:
    limits = Limits(attenuation=1, reserve=0, max_pilots=10, curb=1.0)
    got = decide([state(8, name="a"), state(4, name="b"), state(0, name="c")], limits,
                 now=NOW, budget=100)
    assert [d.create for d in got] == [7, 3, 0]
    assert "global cap" in got[0].reason


def test_halving_near_the_global_cap() -> None:
    limits = Limits(attenuation=1, reserve=0, max_pilots=100, curb=0.8)
    got = decide([state(40, busy=85, cap=200, name="a")], limits, now=NOW, budget=100)
    assert got[0].create == 15         # 40 wanted, halved (curb) to 20, then the last 15 of the cap
    assert "halved near the global cap" in got[0].reason


def test_the_creation_budget_is_split_fairly() -> None:
    limits = Limits(attenuation=1, reserve=0)
    got = decide([state(10, name="a"), state(10, name="b")], limits, now=NOW, budget=5)
    assert [d.create for d in got] == [3, 2]
    assert all("creation rate limit" in d.reason for d in got), got


def test_no_budget_no_creation_but_removal_still_happens() -> None:
    got = decide([state(10, name="a"), state(0, idle_p=2, removable=2, name="b")], LIMITS,
                 now=NOW, budget=0)
    assert [(d.create, d.remove) for d in got] == [(0, 0), (0, 2)]


def test_pending_pilots_of_all_shapes_never_outnumber_the_idle_jobs() -> None:
    """Four jobs both shapes can run: each shape alone would ask for up to four pilots."""
    limits = Limits(attenuation=1, reserve=4)
    both = [state(4, 2, name="a"), state(4, 2, pending=1, name="b")]
    got = decide(both, limits, now=NOW, budget=100, matched_jobs=4)
    assert sum(d.create for d in got) == 3
    assert [d.create for d in decide(both, limits, now=NOW, budget=100)] == [4, 3]
