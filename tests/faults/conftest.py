"""Fixtures for the fault, crash and hostile-input suite: a seeded simulated cluster with four
nodes and a factory of real kgahp processes talking to it (see tests/harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from harness import Gahp, gahp_factory, start_sim


@pytest.fixture
def fsim(tmp_path: Path) -> Iterator[Any]:
    cluster = start_sim(str(tmp_path / "sim"), seed=20261122)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def make_gahp(fsim: Any, tmp_path: Path) -> Iterator[Callable[..., Gahp]]:
    with gahp_factory(fsim, tmp_path) as make:
        yield make
