"""Credentials that change under a running kgahp: ServiceAccount tokens and refreshable users.

A CE that runs in a pod talks to the API with its ServiceAccount's projected token, which the
kubelet rotates (about hourly, by swapping the volume's `..data` symlink); the official client
reads the token once in a kubeconfig (`tokenFile`) and every minute in-cluster, and then fails
with 401 once the old token expires. kgahp instead:

- re-reads a token file whenever the file changes (stat checked at most once a second; the stat
  follows the kubelet's symlinks, so a swap is seen at once);
- on a 401, forces a fresh read (token file) or reloads the kubeconfig (exec plugins and OIDC
  providers then hand out a new token) and retries the request once (`Kube._once`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
BEARER = "BearerToken"   # the key under which the client's Configuration keeps "Bearer <token>"


class TokenFile:
    """A bearer token read from a file, re-read when the file changes."""

    def __init__(self, path: str, *, check_every: float = 1.0) -> None:
        self.path = path
        self.check_every = check_every
        self._lock = threading.Lock()
        self._stamp: Optional[tuple[int, int, int, int]] = None
        self._checked = float("-inf")
        self._token = ""

    def _read_if_changed(self, force: bool) -> str:
        with self._lock:
            now = time.monotonic()
            if not force and now - self._checked < self.check_every:
                return self._token
            self._checked = now
            try:
                st = os.stat(self.path)
                stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
                if force or stamp != self._stamp:
                    with open(self.path, encoding="utf-8") as handle:
                        token = handle.read().strip()
                    if token:
                        if self._token and token != self._token:
                            log.info("bearer token file %s changed; using the new token",
                                     self.path)
                        self._token = token
                    self._stamp = stamp
            except OSError as exc:   # mid-rotation or briefly unreadable: keep the last token
                log.warning("cannot read the bearer token file %s: %s", self.path, exc)
            return self._token

    def token(self) -> str:
        return self._read_if_changed(False)

    def install(self, cfg: Any) -> None:
        """Put the token into a client Configuration and keep it current before each request."""
        token = self._read_if_changed(True)
        if not token:
            raise ValueError(f"the bearer token file {self.path} is empty or unreadable")
        cfg.api_key[BEARER] = "Bearer " + token
        cfg.api_key_prefix.pop(BEARER, None)

        def refresh(target: Any) -> None:
            current = self.token()
            if current:
                target.api_key[BEARER] = "Bearer " + current

        cfg.refresh_api_key_hook = refresh

    def reauthenticate(self, cfg: Any) -> None:
        token = self._read_if_changed(True)
        if token:
            cfg.api_key[BEARER] = "Bearer " + token


class Reauthenticator:
    """What Kube does on a 401: get fresh credentials, then say whether a retry is worth it
    (only when the token now differs from the one the failed request carried). Renewals are
    serialised: threads refused with the same old token renew once, the others find the new
    token already in place and just retry."""

    def __init__(self, cfg: Any, renew: Callable[[Any], None], *,
                 min_interval: float = 0.0) -> None:
        self.cfg = cfg
        self.renew = renew
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._last = float("-inf")

    def current(self) -> str:
        return str(self.cfg.api_key.get(BEARER, ""))

    def __call__(self, used: str) -> bool:
        with self._lock:
            if self.current() == used and time.monotonic() - self._last >= self.min_interval:
                self._last = time.monotonic()
                try:
                    self.renew(self.cfg)
                except Exception as exc:   # the retry is then skipped: the 401 stands
                    log.warning("renewing the Kubernetes credentials failed: %s", exc)
            return bool(self.current()) and self.current() != used


def in_cluster_host(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """https://host:port from KUBERNETES_SERVICE_HOST/PORT, or None outside a pod."""
    env = os.environ if environ is None else environ
    host = env.get("KUBERNETES_SERVICE_HOST", "").strip()
    port = env.get("KUBERNETES_SERVICE_PORT", "").strip() or "443"
    if not host:
        return None
    if ":" in host:   # IPv6 literal
        host = f"[{host}]"
    return f"https://{host}:{port}"


def load_in_cluster(cfg: Any, *, environ: Optional[Mapping[str, str]] = None,
                    serviceaccount_dir: str = SERVICEACCOUNT_DIR) -> TokenFile:
    """Configure `cfg` from the pod's ServiceAccount (token, CA) and the service variables."""
    host = in_cluster_host(environ)
    if host is None:
        raise ValueError("KUBERNETES_SERVICE_HOST is not set: not running in a pod")
    token_path = os.path.join(serviceaccount_dir, "token")
    ca_path = os.path.join(serviceaccount_dir, "ca.crt")
    if not os.path.exists(token_path):
        raise ValueError(f"no ServiceAccount token at {token_path} (is "
                         "automountServiceAccountToken false for this pod?)")
    if not os.path.exists(ca_path):
        raise ValueError(f"no cluster CA certificate at {ca_path}")
    cfg.host = host
    cfg.ssl_ca_cert = ca_path
    source = TokenFile(token_path)
    source.install(cfg)
    return source


def reauthenticator_of(api_client: Any) -> Optional[Reauthenticator]:
    found = getattr(api_client, "kgahp_reauth", None)
    return found if isinstance(found, Reauthenticator) else None
