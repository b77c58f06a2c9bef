"""The manual (docs/, mkdocs.yml) builds with `mkdocs build --strict`, lists every page in its
nav, and README's links into it resolve. A broken link, a missing anchor or a page left out of
the nav fails the build (mkdocs.yml's `validation`), so it fails here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
CONFIG = REPO / "mkdocs.yml"


class _Loader(yaml.SafeLoader):
    """mkdocs.yml names Python objects (`!!python/name:...`); read them as plain text."""


_Loader.add_multi_constructor(
    "tag:yaml.org,2002:python/", lambda loader, suffix, node: f"{suffix}")


def mkdocs_config() -> dict[str, Any]:
    return yaml.load(CONFIG.read_text(encoding="utf-8"), Loader=_Loader)


def nav_pages(nav: Any) -> list[str]:
    """Every page path named in a nav tree (lists of strings or one-key mappings)."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    raise AssertionError(f"unexpected nav entry {nav!r}")


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(CONFIG),
         "--site-dir", str(site)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    if "No module named mkdocs" in result.stderr:
        pytest.fail("mkdocs is missing: install the test extra (pip install -e '.[test]')")
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-4000:]}"
    assert (site / "index.html").is_file()
    # the lifecycle page carries its state diagram, as a block the browser's Mermaid draws
    states = (site / "job-states" / "index.html").read_text(encoding="utf-8")
    assert '<pre class="mermaid"><code>stateDiagram-v2' in states
    # the generated knob reference made it into the site
    reference = (site / "configuration" / "index.html").read_text(encoding="utf-8")
    assert "KGAHP_IMAGE_PULL_GRACE" in reference


def test_the_nav_lists_every_page_once() -> None:
    nav = nav_pages(mkdocs_config()["nav"])
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(set(nav)) == on_disk, "docs/ pages and the nav of mkdocs.yml differ"
    assert len(nav) == len(set(nav)), "a page is in the nav twice"


def test_the_build_is_strict_and_checks_links() -> None:
    config = mkdocs_config()
    assert config["strict"] is True
    validation = config["validation"]
    assert validation["nav"]["omitted_files"] == "warn"          # strict turns warn into error
    assert validation["links"]["not_found"] == "warn"
    assert validation["links"]["anchors"] == "warn"
    # no plugin that would need the network at build time
    assert config["plugins"] == ["search"]


def test_readme_links_resolve() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [link.split("#")[0] for link in links if "://" not in link and link.split("#")[0]]
    assert any(link.startswith("docs/") for link in local), "README links into the manual"
    missing = [link for link in local if not (REPO / link).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_readme_fits_one_screen_and_keeps_the_two_commands() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 120
    commands = [line for line in lines[:8] if line.startswith("python3 -m venv .venv")]
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[sim]' && .venv/bin/kgahp demo",
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m "
        "pytest -q",
    ]
