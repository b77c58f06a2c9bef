"""Build the official client's ApiClient from kgahp's settings (kubeconfig or in-cluster)."""

from __future__ import annotations

import os

from kubernetes import client, config

from kgahp.config import KubeSettings
from kgahp.errors import ConfigError


def api_client(settings: KubeSettings, *, pool_size: int = 32) -> client.ApiClient:
    """An ApiClient for the configured cluster. Raises ConfigError with a fix-it sentence."""
    cfg = client.Configuration()
    try:
        if settings.kubeconfig.strip().lower() == "in-cluster":
            config.load_incluster_config(client_configuration=cfg)
        else:
            path = settings.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            path = os.path.expanduser(path.split(os.pathsep)[0])
            if not os.path.exists(path):
                raise ConfigError(
                    f"kubeconfig {path} does not exist; set KGAHP_KUBECONFIG to a kubeconfig "
                    "readable by the job owner, or to in-cluster")
            config.load_kube_config(config_file=path, context=settings.context or None,
                                    client_configuration=cfg, persist_config=False)
    except ConfigError:
        raise
    except Exception as exc:  # the loaders raise a zoo of types; the message is what matters
        raise ConfigError(f"cannot load Kubernetes credentials: {exc}") from None
    # kgahp retries itself (with backoff and Retry-After); urllib3's silent retries would hide
    # failures from that logic and could repeat a POST.
    cfg.retries = False
    cfg.connection_pool_maxsize = pool_size
    return client.ApiClient(cfg)
