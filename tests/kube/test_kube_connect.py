"""The token refresh hook the kubeconfig and in-cluster loaders install runs at most once a
second, and keeps running after it replaces itself (as the kubeconfig loader's does)."""

from __future__ import annotations

import time
from typing import Any

from kgahp.kube.connect import ThrottledRefresh


class _Cfg:
    def __init__(self) -> None:
        self.calls = 0
        self.refresh_api_key_hook: Any = None

    def install(self) -> None:
        def hook(cfg: Any) -> None:      # like the loader: count, then put a new closure in
            cfg.calls += 1
            cfg.install()
        self.refresh_api_key_hook = hook


def test_refresh_runs_at_most_once_per_interval_and_survives_replacing_itself() -> None:
    cfg = _Cfg()
    cfg.install()
    throttled = ThrottledRefresh(cfg.refresh_api_key_hook, every=0.2)
    cfg.refresh_api_key_hook = throttled
    for _ in range(50):
        cfg.refresh_api_key_hook(cfg)
    assert cfg.calls == 1
    assert cfg.refresh_api_key_hook is throttled
    time.sleep(0.25)
    cfg.refresh_api_key_hook(cfg)
    cfg.refresh_api_key_hook(cfg)
    assert cfg.calls == 2 and cfg.refresh_api_key_hook is throttled
