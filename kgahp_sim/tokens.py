"""ServiceAccount-style bearer tokens for the sim: tokens that expire, and a token file that the
"kubelet" rotates the way it updates a projected volume.

The apiserver answers 401 `Unauthorized` for a token it no longer accepts, expired or not
(25f, 25g3 in tests/data/k8s-recordings-v1.36). A projected ServiceAccount token volume holds
`token` as a symlink to `..data/token`, where `..data` is itself a symlink to a timestamped
directory; an update writes a new directory and swaps `..data` atomically, so a reader never sees
a half-written token.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from kgahp_sim.simconfig import SimConfig


def issue(config: SimConfig, ttl: Optional[float]) -> str:
    """A new admin bearer token, valid for `ttl` seconds (None: until revoked)."""
    token = "sim-sa." + secrets.token_urlsafe(24)
    config.tokens[token] = 0.0 if ttl is None else time.time() + ttl
    return token


def revoke(config: SimConfig, token: str) -> None:
    config.tokens.pop(token, None)


def valid(config: SimConfig, token: str) -> bool:
    expiry = config.tokens.get(token)
    return expiry is not None and (expiry == 0.0 or time.time() < expiry)


def write_projected(directory: str | Path, files: dict[str, str]) -> None:
    """Write `files` into a projected-volume layout and swap them in atomically."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    stamp = root / (time.strftime("..%Y_%m_%d_%H_%M_%S.") + secrets.token_hex(4))
    stamp.mkdir()
    for name, text in files.items():
        (stamp / name).write_text(text)
    old_target = os.readlink(root / "..data") if (root / "..data").is_symlink() else None
    tmp_link = root / "..data_tmp"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(stamp.name, tmp_link)
    os.replace(tmp_link, root / "..data")
    for name in files:
        link = root / name
        if not link.is_symlink():
            if link.exists():
                link.unlink()
            os.symlink(f"..data/{name}", link)
    if old_target:
        for leftover in (root / old_target).glob("*"):
            leftover.unlink()
        (root / old_target).rmdir()
