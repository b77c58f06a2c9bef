"""Build the official client's ApiClient from kgahp's settings (kubeconfig or in-cluster)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable, Optional

import yaml
from kubernetes import client, config

from kgahp.config import KubeSettings
from kgahp.errors import ConfigError
from kgahp.kube.credentials import (
    BEARER,
    SERVICEACCOUNT_DIR,
    Reauthenticator,
    TokenFile,
    in_cluster_host,
    load_in_cluster,
)


def api_client(settings: KubeSettings, *, pool_size: int = 32,
               environ: Optional[Mapping[str, str]] = None,
               serviceaccount_dir: str = SERVICEACCOUNT_DIR) -> client.ApiClient:
    """An ApiClient for the configured cluster. Raises ConfigError with a fix-it sentence."""
    cfg = client.Configuration()
    renew: Optional[Callable[[Any], None]] = None
    try:
        if _in_cluster(settings, environ):
            source = load_in_cluster(cfg, environ=environ, serviceaccount_dir=serviceaccount_dir)
            renew = source.reauthenticate
        else:
            path = settings.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            path = os.path.expanduser(path.split(os.pathsep)[0])
            if not os.path.exists(path):
                raise ConfigError(
                    f"kubeconfig {path} does not exist; set KGAHP_KUBECONFIG to a kubeconfig "
                    "readable by the job owner, or to in-cluster")

            def reload(target: Any) -> None:
                # exec plugins and OIDC providers hand out a fresh token on a reload
                config.load_kube_config(config_file=path, context=settings.context or None,
                                        client_configuration=target, persist_config=False)

            reload(cfg)
            token_file = _user_token_file(path, settings.context)
            if token_file:
                source = TokenFile(token_file)
                source.install(cfg)
                renew = source.reauthenticate
            else:
                def renew(target: Any) -> None:
                    reload(target)
                    hook = target.refresh_api_key_hook
                    if hook is not None and not isinstance(hook, ThrottledRefresh):
                        target.refresh_api_key_hook = ThrottledRefresh(hook)
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
    api = client.ApiClient(cfg)
    if renew is not None and cfg.api_key.get(BEARER):
        api.kgahp_reauth = Reauthenticator(cfg, renew)  # type: ignore[attr-defined]
    return api


def _in_cluster(settings: KubeSettings, environ: Optional[Mapping[str, str]]) -> bool:
    """Explicit `in-cluster`, or no kubeconfig anywhere while running in a pod."""
    chosen = settings.kubeconfig.strip()
    if chosen.lower() == "in-cluster":
        return True
    env = os.environ if environ is None else environ
    if chosen or env.get("KUBECONFIG"):
        return False
    return (in_cluster_host(env) is not None
            and not os.path.exists(os.path.expanduser("~/.kube/config")))


def _user_token_file(path: str, context: str) -> Optional[str]:
    """The current user's `tokenFile` in a kubeconfig (absolute), if it names one."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = yaml.safe_load(handle) or {}
        name = context or doc.get("current-context") or ""
        ctx = next((c.get("context") or {} for c in doc.get("contexts") or ()
                    if c.get("name") == name), {})
        user = next((u.get("user") or {} for u in doc.get("users") or ()
                     if u.get("name") == ctx.get("user")), {})
    except (OSError, yaml.YAMLError, AttributeError, TypeError):
        return None
    token_file = user.get("tokenFile") if isinstance(user, dict) else None
    if not token_file or user.get("token"):
        return None
    return os.path.join(os.path.dirname(os.path.abspath(path)), os.path.expanduser(token_file))


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
