"""kgahp: the Kubernetes GAHP for HTCondor."""

__version__ = "0.1.0"
