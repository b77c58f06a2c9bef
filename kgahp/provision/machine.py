"""A shape's machine ClassAd: what a pilot of that shape will advertise once it runs (its
partitionable slot, as the negotiator sees it).

Demand is judged against it (the job's Requirements with this ad as TARGET, and the shape's START
with the job as TARGET), so it carries what a startd's slot ad carries that job Requirements
usually name: Cpus, Memory (MiB), Disk (KiB), GPUs, Arch, OpSys, HasFileTransfer. The admin's
`attributes` come last and win (e.g. an OpSysAndVer, HAS_SINGULARITY, or Arch for ARM nodes).
"""

from __future__ import annotations

import classad2

from kgahp.provision.shapes import Shape

SHAPE_ATTRIBUTE = "KgahpPilotShape"
# What a partitionable slot adds to START: the job's request must fit the slot (HTCondor's own
# WithinResourceLimits, with its defaults for a request the job does not make).
WITHIN_RESOURCE_LIMITS = (
    "ifThenElse(TARGET.RequestCpus =?= undefined, 1, TARGET.RequestCpus) <= MY.Cpus"
    " && ifThenElse(TARGET.RequestMemory =?= undefined, 0, TARGET.RequestMemory) <= MY.Memory"
    " && ifThenElse(TARGET.RequestDisk =?= undefined, 0, TARGET.RequestDisk) <= MY.Disk"
    " && ifThenElse(TARGET.RequestGPUs =?= undefined, 0, TARGET.RequestGPUs) <= MY.GPUs")
BASE_ATTRIBUTES: tuple[tuple[str, object], ...] = (
    ("MyType", "Machine"),
    ("Arch", "X86_64"),
    ("OpSys", "LINUX"),
    ("HasFileTransfer", True),
    ("State", "Unclaimed"),
    ("Activity", "Idle"),
)


def machine_ad(shape: Shape) -> classad2.ClassAd:
    ad = classad2.ClassAd()
    for name, value in BASE_ATTRIBUTES:
        ad[name] = value
    cpus = int(shape.cpus) if float(shape.cpus).is_integer() else shape.cpus
    ad["Cpus"] = cpus
    ad["TotalCpus"] = cpus
    ad["Memory"] = shape.memory_mib
    ad["TotalMemory"] = shape.memory_mib
    ad["Disk"] = shape.disk_mib * 1024
    ad["GPUs"] = shape.gpus
    if shape.gpu_model:
        ad["GPUs_DeviceName"] = shape.gpu_model
        ad["CUDADeviceName"] = shape.gpu_model
    ad[SHAPE_ATTRIBUTE] = shape.name
    for name, value in shape.attributes:
        ad[name] = value
    ad["START"] = classad2.ExprTree(shape.start)
    ad["WithinResourceLimits"] = classad2.ExprTree(WITHIN_RESOURCE_LIMITS)
    ad["Requirements"] = classad2.ExprTree("START && WithinResourceLimits")
    return ad


def start_refs(ad: classad2.ClassAd) -> tuple[str, ...]:
    """Job attributes the shape's START (and Requirements) read: TARGET.X, and unscoped names
    the machine ad does not define (matchmaking looks those up in the job), as plain names."""
    out: set[str] = set()
    for attribute in ("START", "WithinResourceLimits", "Requirements"):
        expr = ad.lookup(attribute)
        for ref in ad.externalRefs(expr):
            scope, _, name = ref.rpartition(".")
            if scope.upper() in ("TARGET", "") and name:
                out.add(name)
    return tuple(sorted(out, key=str.lower))
