"""`kgahp provision`: grow an HTCondor pool into Kubernetes from its idle jobs.

Each cycle reads the idle jobs (demand) and the pilot pods with their startd ads (supply), asks
the pure `target` function how many pilots each shape should create or remove, and acts through
the same pod builder, policy and templates the GAHP uses for jobs. Every piece of state lives in
the cluster (labels on the pilot pods) and in the pool, so a restarted provisioner picks up where
the last one stopped.

Modules: `shapes` (the admin's YAML), `machine` (a shape's machine ClassAd), `snapshots` (ads
from files or from the pool), `demand`, `supply`, `target` (pure), `pilots` (a pilot's pod),
`actuate` (creating, deleting, annotating), `cycle` (one cycle and its table), `cli`.
"""
