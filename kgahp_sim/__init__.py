"""A simulated Kubernetes cluster served over real HTTP (``kgahp sim``), for tests and demos.

The product never imports this package.
"""

from __future__ import annotations

from kgahp.sim.cluster import SimCluster
from kgahp.sim.faults import Faults
from kgahp.sim.simconfig import SimConfig
from kgahp.sim.stats import RequestStats
from kgahp.sim.store import ApiStatusError, Store, WatchEvent

__all__ = ["ApiStatusError", "Faults", "RequestStats", "SimCluster", "SimConfig", "Store",
           "WatchEvent"]
