"""The package layering in pyproject.toml ([tool.importlinter]) holds: the simulator imports
nothing of kgahp, kgahp imports the simulator only from its `sim` and `demo` subcommands, and the
pure rooms stay independent of each other and of the integration layer.

`lint-imports` (import-linter, from the test extra) is run from this venv exactly as CI would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS.is_file(), "import-linter missing: pip install -e '.[test]'"
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_the_layering_contracts_are_kept() -> None:
    try:
        import tomllib
    except ImportError:   # Python < 3.11: import-linter brings tomli
        import tomli as tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))[
        "tool"]["importlinter"]["contracts"]
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts)} kept, 0 broken." in result.stdout


def test_a_broken_contract_fails(tmp_path: Path) -> None:
    """The check can fail: a contract today's code breaks (the CLI does import the config)."""
    config = tmp_path / "broken.toml"
    config.write_text('[tool.importlinter]\nroot_packages = ["kgahp"]\n\n'
                      '[[tool.importlinter.contracts]]\nname = "deliberately broken"\n'
                      'type = "forbidden"\nsource_modules = ["kgahp.cli"]\n'
                      'forbidden_modules = ["kgahp.config"]\n', encoding="utf-8")
    result = lint_imports("--config", str(config))
    assert result.returncode != 0
    assert "deliberately broken BROKEN" in result.stdout


def _requests_outside_kube(root: Path) -> list[str]:
    import re

    sends = re.compile(r"\.request\(\s*\"(?:GET|POST|PUT|PATCH|DELETE)\"|\bkube\.call\(")
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                  if "kube" not in p.relative_to(root).parts[:1]
                  and sends.search(p.read_text(encoding="utf-8")))


def test_every_kubernetes_request_is_built_in_kgahp_kube(tmp_path: Path) -> None:
    """All Kubernetes I/O lives in kgahp/kube/ (one place for pacing, retries, error
    translation and the permission scan of tests/check): no other module builds a request."""
    assert _requests_outside_kube(REPO / "kgahp") == []
    stray = tmp_path / "stray.py"     # the scan finds one
    stray.write_text('resp = kube.call("x", lambda: kube.request(\n    "PATCH", path))\n')
    assert _requests_outside_kube(tmp_path) == ["stray.py"]
