"""ServiceAccount-style tokens in the sim (kgahp_sim.tokens), pinned to the v1.36 recordings 25f
and 25g3 and to the Kubernetes projected-volume layout.

- A token the API server does not accept (tampered, 25f) and one that stopped being valid (25g3,
  which stands in for an expired token: the bound pod was deleted) get the same answer: 401 with
  a `Status` whose reason and message are `Unauthorized`. The sim answers that for a token it
  never issued, one past its expiry and one revoked; until then the token works.
- The kubelet writes a projected ServiceAccount volume with its AtomicWriter: each file is a
  symlink `<name> -> ..data/<name>`, `..data` is a symlink to a timestamped directory
  `..YYYY_MM_DD_HH_MM_SS.<random>`, and an update writes a new timestamped directory, swaps
  `..data` with one rename and then removes the old directory. A reader following `token`
  therefore sees the old file or the new one, never a half-written one.

Not replayed, and why: 25a-25e, 25g, 25g2, 25g4 create ServiceAccounts and TokenRequests, an API
the sim does not serve (it issues tokens through `SimCluster.issue_token`).
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_recordings_replay import Replayer, assert_same_answer, load

from kgahp_sim.tokens import revoke, write_projected

PODS = "/api/v1/namespaces/default/pods"
HEADERS = ("Content-Type", "Cache-Control")


@pytest.fixture
def tokens(sim: Any) -> Replayer:
    sim.require_sim("issues, expires and revokes tokens")
    return Replayer(sim)


def _list_with(replay: Replayer, token: str) -> int:
    resp = replay.send({"method": "GET", "path": PODS, "headers": {}}, auth=token, body=None,
                       query={})
    resp.read()
    return int(resp.status)


@pytest.mark.parametrize("case", ["25f", "25g3"])
def test_a_token_the_server_does_not_accept_is_401_as_recorded(tokens, case):
    good = tokens.sim.issue_token(60)
    tampered = good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb")
    resp, data, rec = tokens.exchange(case, auth=tampered)
    assert_same_answer(resp, data, rec, headers=HEADERS)


def test_an_issued_token_works_until_it_expires_then_is_401_as_recorded(tokens):
    token = tokens.sim.issue_token(1.0)
    assert _list_with(tokens, token) == 200
    time.sleep(1.2)
    resp, data, rec = tokens.exchange("25g3", auth=token)
    assert_same_answer(resp, data, rec, headers=HEADERS)
    assert _list_with(tokens, tokens.sim.issue_token(60)) == 200   # a fresh one works


def test_a_revoked_token_is_401_at_once_and_others_are_untouched(tokens):
    old, new = tokens.sim.issue_token(3600), tokens.sim.issue_token(3600)
    assert _list_with(tokens, old) == _list_with(tokens, new) == 200
    tokens.sim.call(lambda: revoke(tokens.sim.config, old))
    resp, data, rec = tokens.exchange("25f", auth=old)
    assert_same_answer(resp, data, rec, headers=HEADERS)
    assert _list_with(tokens, new) == 200
    assert load("25f")["response"]["body"]["reason"] == "Unauthorized"


STAMP = re.compile(r"^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[0-9a-f]+$")


def test_projected_volume_has_the_kubelets_layout(tmp_path: Path) -> None:
    sa = tmp_path / "serviceaccount"
    write_projected(sa, {"token": "one", "ca.crt": "CA", "namespace": "default"})
    first = os.readlink(sa / "..data")
    assert STAMP.match(first)
    for name in ("token", "ca.crt", "namespace"):
        assert os.readlink(sa / name) == f"..data/{name}"
    write_projected(sa, {"token": "two", "ca.crt": "CA", "namespace": "default"})
    second = os.readlink(sa / "..data")
    assert STAMP.match(second) and second != first
    assert (sa / "token").read_text() == "two"
    assert sorted(p.name for p in sa.iterdir() if STAMP.match(p.name)) == [second]  # old gone
    assert not (sa / "..data_tmp").exists()


def test_a_reader_never_sees_a_partial_token_during_rotations(tmp_path: Path) -> None:
    """As with the kubelet's swap, a read racing the removal of the old directory can find no
    file (kgahp then keeps its last token); what it reads is always one whole token."""
    sa = tmp_path / "serviceaccount"
    tokens = [f"token-{i:04d}-" + "x" * 900 for i in range(200)]
    write_projected(sa, {"token": tokens[0]})
    seen: set[str] = set()
    failures: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.add((sa / "token").read_text())
            except FileNotFoundError:   # the old directory removed mid path lookup
                pass
            except OSError as exc:
                failures.append(repr(exc))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for token in tokens[1:]:
            write_projected(sa, {"token": token})
    finally:
        stop.set()
        reader.join()
    assert seen <= set(tokens) and len(seen) > 1
    assert failures == []
