"""Supply: pilot pods and the startd ads matched to them by name."""

from __future__ import annotations

import pytest
from provision_support import pod, startd

from kgahp.config import LifecycleSettings
from kgahp.provision import supply
from kgahp.provision.actuate import BUSY_COST, removable, stale, wanted_cost

NOW = 1_767_300_000.0
SETTINGS = supply.pilot_lifecycle(LifecycleSettings(), 600)

CASES = [
    # (what, pod, ads, state)
    ("not scheduled yet", pod("p", "cpu-1", created=NOW - 5, scheduled=False), [],
     supply.PENDING),
    ("pulling its image", pod("p", "cpu-1", created=NOW - 5, waiting=(
        "ContainerCreating", "")), [], supply.PENDING),
    ("running, its startd not in the pool yet", pod("p", "cpu-1", created=NOW - 30,
                                                     phase="Running"), [], supply.STARTING),
    ("unclaimed startd", pod("p", "cpu-1", created=NOW - 30, phase="Running"),
     [startd("p", entered=NOW - 20)], supply.IDLE),
    ("claimed slot", pod("p", "cpu-1", created=NOW - 30, phase="Running"),
     [startd("p", "Claimed", entered=NOW - 10)], supply.BUSY),
    ("partitionable slot with a dynamic slot", pod("p", "cpu-1", created=NOW - 30,
                                                   phase="Running"),
     [startd("p", entered=NOW - 20, dynamic=1)], supply.BUSY),
    ("partitionable slot, its dynamic slot claimed", pod("p", "cpu-1", created=NOW - 30,
                                                         phase="Running"),
     [startd("p", entered=NOW - 20, dynamic=0),
      startd("p", "Claimed", entered=NOW - 5, slot="slot1_1")], supply.BUSY),
    ("another pod's ad does not count", pod("p", "cpu-1", created=NOW - 30, phase="Running"),
     [startd("q", "Claimed")], supply.STARTING),
    ("image pull failing past the grace", pod("p", "cpu-1", created=NOW - 600, waiting=(
        "ImagePullBackOff", 'Back-off pulling image "pilot:1"')), [], supply.FAILED),
    ("image pull failing within the grace", pod("p", "cpu-1", created=NOW - 10, waiting=(
        "ErrImagePull", "not found")), [], supply.PENDING),
    ("unschedulable past the limit", pod("p", "cpu-1", created=NOW - 900, scheduled=False,
                                         unschedulable_since=NOW - 899), [], supply.FAILED),
    ("unschedulable within the limit", pod("p", "cpu-1", created=NOW - 90, scheduled=False,
                                           unschedulable_since=NOW - 89), [], supply.PENDING),
    ("crashed", pod("p", "cpu-1", created=NOW - 60, phase="Failed", terminated=1), [],
     supply.FAILED),
    ("shut itself down (STARTD_NOCLAIM_SHUTDOWN)", pod("p", "cpu-1", created=NOW - 2000,
                                                       phase="Succeeded", terminated=0),
     [], supply.DONE),
    ("being deleted", pod("p", "cpu-1", created=NOW - 60, phase="Running", deleting=True),
     [startd("p", entered=NOW - 20)], supply.TERMINATING),
]


@pytest.mark.parametrize("what, the_pod, ads, state", CASES, ids=[c[0] for c in CASES])
def test_pilot_states(what: str, the_pod: dict, ads: list, state: str) -> None:
    pilots = supply.classify_all([the_pod], ads, now=NOW, settings=SETTINGS)
    assert [p.state for p in pilots] == [state], what


def test_unschedulable_pod_gets_the_scheduler_reason() -> None:
    the_pod = pod("p", "cpu-1", created=NOW - 900, scheduled=False,
                  unschedulable_since=NOW - 899)
    [pilot] = supply.classify_all([the_pod], [], now=NOW, settings=SETTINGS)
    assert pilot.state == supply.FAILED
    assert "Insufficient nvidia.com/gpu" in pilot.reason


def test_failed_pilot_reason_names_the_image_problem() -> None:
    [pilot] = supply.classify_all([pod("p", "cpu-1", created=NOW - 600, waiting=(
        "ErrImagePull", 'pull access denied for "pilot:1"'))], [], now=NOW, settings=SETTINGS)
    assert "pull access denied" in pilot.reason


def test_idle_since_is_when_the_startd_became_unclaimed() -> None:
    [pilot] = supply.classify_all([pod("p", "cpu-1", created=NOW - 900, phase="Running")],
                                  [startd("p", entered=NOW - 400)], now=NOW, settings=SETTINGS)
    assert pilot.since == NOW - 400


def _pilots(*specs: tuple[str, str, float]) -> list[supply.Pilot]:
    return [supply.Pilot("pilots", name, "cpu-1", state, since, since)
            for name, state, since in specs]


def test_summary_counts_and_failures_on_record() -> None:
    pilots = _pilots(("a", supply.PENDING, NOW), ("b", supply.STARTING, NOW),
                     ("c", supply.IDLE, NOW - 1000), ("d", supply.BUSY, NOW - 1000),
                     ("e", supply.FAILED, NOW - 100), ("f", supply.FAILED, NOW - 5000),
                     ("g", supply.DONE, NOW))
    got = supply.summarize(pilots, ["cpu-1", "gpu-1"], backoff_max=3600, now=NOW)
    assert (got["cpu-1"].pending, got["cpu-1"].idle, got["cpu-1"].busy) == (2, 1, 1)
    assert got["cpu-1"].failed == 1          # the one older than backoff_max is off the record
    assert got["cpu-1"].last_failure == NOW - 100
    assert got["gpu-1"] == supply.ShapeSupply()


def test_a_pilot_that_reached_the_pool_after_the_failure_clears_the_record() -> None:
    pilots = _pilots(("e", supply.FAILED, NOW - 100), ("c", supply.IDLE, NOW - 50))
    got = supply.summarize(pilots, ["cpu-1"], backoff_max=3600, now=NOW)
    assert got["cpu-1"].failed == 0 and got["cpu-1"].recovered
    assert [p.name for p in stale(pilots, now=NOW, backoff_max=3600, recovered=["cpu-1"])] \
        == ["e"]


def test_only_waiting_pilots_past_the_grace_are_removable_pending_first() -> None:
    pilots = _pilots(("busy", supply.BUSY, NOW - 9999), ("idle-old", supply.IDLE, NOW - 900),
                     ("idle-new", supply.IDLE, NOW - 10), ("pend", supply.PENDING, NOW - 400),
                     ("idle-mid", supply.IDLE, NOW - 500))
    assert [p.name for p in removable(pilots, "cpu-1", now=NOW, grace=300)] == [
        "pend", "idle-old", "idle-mid"]


def test_deletion_cost_follows_busy_and_idle() -> None:
    busy, idle = _pilots(("b", supply.BUSY, NOW), ("i", supply.IDLE, NOW))
    assert wanted_cost(busy) == BUSY_COST
    from dataclasses import replace
    assert wanted_cost(replace(busy, deletion_cost=BUSY_COST)) is None
    assert wanted_cost(idle) is None
    assert wanted_cost(replace(idle, deletion_cost=BUSY_COST)) == "0"
