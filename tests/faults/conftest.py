"""Fixtures for the fault, crash and hostile-input suite: a seeded simulated cluster with four
nodes and a factory of real kgahp processes talking to it (see faults_harness)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from faults_harness import Gahp, start_sim


@pytest.fixture
def fsim(tmp_path: Path) -> Iterator[Any]:
    cluster = start_sim(str(tmp_path / "sim"), seed=20261122)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def make_gahp(fsim: Any, tmp_path: Path) -> Iterator[Callable[..., Gahp]]:
    made: list[Gahp] = []

    def make(**knobs: object) -> Gahp:
        g = Gahp(fsim, tmp_path / f"g{len(made)}", {k: str(v) for k, v in knobs.items()})
        made.append(g)
        return g

    yield make
    for g in made:
        try:
            g.close()
        except AssertionError:   # a test that killed it on purpose
            g.driver.kill()
