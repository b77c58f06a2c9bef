"""Knobs of the simulated Kubernetes cluster (``kgahp sim``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SimConfig:
    nodes: int = 2                     # sim-node-1 .. sim-node-N
    cpu: str = "8"                     # per node allocatable
    memory: str = "32Gi"
    gpus: int = 0                      # nvidia.com/gpu per node (0 = none)
    gpu_product: str = "NVIDIA-A100"   # node label nvidia.com/gpu.product when gpus > 0
    workdir: str = ""                  # where pods' directories and logs live; "" = a temp dir
    history_window: int = 10000        # watch events kept; older resourceVersions get 410
    token: str = "kgahp-sim-admin"     # bearer token of the all-powerful user
    restricted_token: str = "kgahp-sim-restricted"  # no rights: 403s, SSAR allowed=false
    schedule_delay: float = 0.05       # seconds before a pending pod is bound
    start_delay: float = 0.2           # ContainerCreating duration
    bookmark_interval: float = 60.0    # seconds between BOOKMARKs on idle watches (real: ~60 s)
    run_processes: bool = True         # False: every container is scripted (benchmarks)
    # Images whose own user is root (shell patterns, matched against the image as written and
    # with ':latest' added): under runAsNonRoot without a runAsUser the kubelet refuses them.
    root_images: tuple[str, ...] = ()
    # The Kueue stand-in (kgahp_sim.kueue): LocalQueue name -> quota {"cpu", "memory", "pods"};
    # empty = no Kueue (the queue-name label is then just a label, as without Kueue).
    kueue_queues: dict[str, dict[str, str]] = field(default_factory=dict)
    # Extra admin bearer tokens (kgahp_sim.tokens): token -> expiry (epoch seconds, 0 = never);
    # an expired or unknown token gets 401, as from a real apiserver.
    tokens: dict[str, float] = field(default_factory=dict)
