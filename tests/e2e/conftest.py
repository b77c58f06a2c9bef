"""End-to-end fixtures: the installed kgahp executable, driven through the GAHP protocol as the
gridmanager drives it, against the simulated cluster over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from harness import Gahp, gahp_factory


@pytest.fixture
def make_gahp(sim: Any, tmp_path: Path) -> Iterator[Callable[..., Gahp]]:
    with gahp_factory(sim, tmp_path) as make:
        yield make


@pytest.fixture
def gahp(make_gahp: Callable[..., Gahp]) -> Gahp:
    return make_gahp()
