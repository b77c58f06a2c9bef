"""A simulated Kubernetes cluster served over real HTTP (``kgahp sim``), for tests and demos.

The product never imports this package.
"""

from __future__ import annotations

from kgahp_sim.cluster import SimCluster
from kgahp_sim.faults import Faults
from kgahp_sim.simconfig import SimConfig
from kgahp_sim.stats import RequestStats
from kgahp_sim.store import ApiStatusError, Store, WatchEvent

__all__ = ["ApiStatusError", "Faults", "RequestStats", "SimCluster", "SimConfig", "Store",
           "WatchEvent"]
