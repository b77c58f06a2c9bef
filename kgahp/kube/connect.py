"""Build the official client's ApiClient from kgahp's settings (kubeconfig or in-cluster)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

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
    if cfg.refresh_api_key_hook is not None:
        cfg.refresh_api_key_hook = ThrottledRefresh(cfg.refresh_api_key_hook)
    return client.ApiClient(cfg)


class ThrottledRefresh:
    """The loaders' token refresh hook, run at most once a second instead of before every
    request. The kubeconfig loader's hook re-applies the whole configuration each time (the host
    setter reads every proxy variable of the environment): 4% of a submit's CPU. Tokens are
    renewed 5 minutes before they expire (in-cluster: re-read every minute), so a second's delay
    changes nothing. The hook installs a fresh closure of itself on each run; it is adopted."""

    def __init__(self, hook: Callable[[Any], None], every: float = 1.0) -> None:
        self.hook = hook
        self.every = every
        self._last = float("-inf")
        self._lock = threading.Lock()

    def __call__(self, cfg: Any) -> None:
        if time.monotonic() - self._last < self.every:
            return
        with self._lock:
            self._last = time.monotonic()
            self.hook(cfg)
            fresh = cfg.refresh_api_key_hook
            if fresh is not self and fresh is not None:
                self.hook = fresh
                cfg.refresh_api_key_hook = self
