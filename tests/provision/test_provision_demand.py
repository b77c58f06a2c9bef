"""Demand: idle jobs matched against each shape's machine ad by classad2 matchmaking."""

from __future__ import annotations

import classad2
import pytest
from provision_support import CPU_ONLY, job_ads, shapes

from kgahp.provision.demand import demand, group_jobs
from kgahp.provision.machine import machine_ad, start_refs
from kgahp.provision.shapes import Shape

REQ = ('(TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && (TARGET.Disk >= RequestDisk)'
       ' && (TARGET.Memory >= RequestMemory) && (TARGET.HasFileTransfer)')


def machines(items=None):  # type: ignore[no-untyped-def]
    return [(s.name, machine_ad(s)) for s in (items or shapes())]


def refs(pairs) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    out: set[str] = set()
    for _, ad in pairs:
        out.update(start_refs(ad))
    return tuple(sorted(out))


def job(body: str) -> classad2.ClassAd:
    return classad2.ClassAd(f"[ JobStatus = 1; JobUniverse = 5; {body} ]")


def test_the_snapshot_asks_each_shape_only_for_the_jobs_it_can_run() -> None:
    pairs = machines()
    found = demand(job_ads(), pairs, refs(pairs))
    # 40 one-core jobs fit both CPU shapes; 6 four-core 12000 MiB jobs only the 16Gi one;
    # 3 GPU jobs only the GPU shape; 2 Windows jobs nothing; running, held and grid jobs
    # are no demand at all
    assert found.jobs == 51
    assert found.unmatched == 2
    assert {n: d.idle for n, d in found.shapes.items()} == {"cpu-1": 40, "cpu-8": 46,
                                                            "gpu-1": 3}
    assert found.shapes["cpu-1"].share == pytest.approx(20)
    assert found.shapes["cpu-8"].share == pytest.approx(26)
    assert found.shapes["gpu-1"].share == pytest.approx(3)
    assert found.groups == 4


CASES = [
    # (what, job body, shapes that must be asked for)
    ("a GPU job never asks for a CPU shape",
     f"RequestCpus = 1; RequestMemory = 1024; RequestDisk = 1000; RequestGPUs = 1; "
     f"Requirements = {REQ} && (TARGET.GPUs >= RequestGPUs)", {"gpu-1"}),
    ("a CPU job never asks for the GPU shape (its START)",
     f"RequestCpus = 1; RequestMemory = 1024; RequestDisk = 1000; Requirements = {REQ}",
     {"cpu-1", "cpu-8"}),
    ("Requirements nothing meets ask for nothing",
     'RequestCpus = 1; RequestMemory = 1024; RequestDisk = 1000; '
     'Requirements = TARGET.OpSys == "WINDOWS"', set()),
    ("a request larger than every shape asks for nothing",
     f"RequestCpus = 64; RequestMemory = 1024; RequestDisk = 1000; Requirements = {REQ}",
     set()),
    ("memory only the big shape has",
     f"RequestCpus = 1; RequestMemory = 8000; RequestDisk = 1000; Requirements = {REQ}",
     {"cpu-8"}),
    ("Requirements that read a machine attribute the admin added",
     f'RequestCpus = 1; RequestMemory = 100; RequestDisk = 1; Requirements = {REQ} && '
     'TARGET.HAS_CVMFS_oasis_opensciencegrid_org =?= true', set()),
    ("an undefined Requirements matches by START alone", "RequestCpus = 1; RequestMemory = 10",
     set()),
]


@pytest.mark.parametrize("what, body, expected", CASES, ids=[c[0] for c in CASES])
def test_which_shapes_a_job_asks_for(what: str, body: str, expected: set[str]) -> None:
    pairs = machines()
    found = demand([job(body)], pairs, refs(pairs))
    assert {n for n, d in found.shapes.items() if d.idle} == expected, what
    assert found.unmatched == (0 if expected else 1)


def test_admin_attributes_reach_the_machine_ad() -> None:
    cvmfs = shapes({"shapes": {"cvmfs": {"cpus": 1, "attributes": {
        "HAS_CVMFS_oasis_opensciencegrid_org": True, "Arch": "aarch64"}}}})
    body = ('RequestCpus = 1; RequestMemory = 100; RequestDisk = 1; Requirements = '
            'TARGET.HAS_CVMFS_oasis_opensciencegrid_org =?= true && TARGET.Arch == "aarch64"')
    pairs = machines(cvmfs)
    assert demand([job(body)], pairs, refs(pairs)).shapes["cvmfs"].idle == 1


def test_a_start_expression_on_a_job_attribute_is_honoured_and_splits_groups() -> None:
    only_alice = (Shape("alice", cpus=1, start='TARGET.Owner == "alice"'),
                  Shape("anyone", cpus=1, start=CPU_ONLY))
    pairs = machines(only_alice)
    assert refs(pairs) == ("Owner", "RequestCpus", "RequestDisk", "RequestGPUs", "RequestMemory")
    jobs = [job(f'Owner = "{o}"; RequestCpus = 1; RequestMemory = 10; RequestDisk = 1; '
                f'Requirements = {REQ}') for o in ("alice", "bob", "alice")]
    found = demand(jobs, pairs, refs(pairs))
    assert found.groups == 2
    assert found.shapes["alice"].idle == 2
    assert found.shapes["anyone"].idle == 3


def test_jobs_that_differ_only_in_what_no_match_reads_form_one_group() -> None:
    jobs = [job(f'ProcId = {i}; Args = "--seed {i}"; RequestCpus = 1; RequestMemory = 1024; '
                f'RequestDisk = 10; Requirements = {REQ}') for i in range(500)]
    jobs += [job(f'RequestCpus = 1; RequestMemory = 3000; RequestDisk = 10; '
                 f'Requirements = {REQ}')]
    assert [g.count for g in group_jobs(jobs, ("RequestGPUs",))] == [500, 1]


def test_an_attribute_reached_through_another_splits_groups() -> None:
    """RequestMemory = ifThenElse(MemoryUsage ...): MemoryUsage decides the match too."""
    body = ("RequestCpus = 1; RequestDisk = 1; RequestMemory = ifThenElse(MemoryUsage =!= "
            f"undefined, MemoryUsage, 1000); Requirements = {REQ}; MemoryUsage = ")
    groups = group_jobs([job(body + "500"), job(body + "9000"), job(body + "500")], ())
    assert sorted(g.count for g in groups) == [1, 2]


def test_the_admin_constraint_filters_jobs() -> None:
    body = f"RequestCpus = 1; RequestMemory = 10; RequestDisk = 1; Requirements = {REQ}"
    jobs = [job(body + "; WantPilots = false"), job(body)]
    pairs = machines()
    found = demand(jobs, pairs, refs(pairs), classad2.ExprTree("WantPilots =!= false"))
    assert found.jobs == 1
