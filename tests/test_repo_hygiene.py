"""The repository stands on its own: no tracked file reaches outside it.

A user clones kgahp anywhere; a test or module that reads a sibling folder of the checkout, or a
comment that names a path on one developer's machine, works only where that folder happens to
exist. Recorded facts the tests need live under tests/data/.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# What never belongs in a tracked file: a sibling of the checkout, or an absolute path into a
# workspace or an admin's/developer's home. (Home folders invented as job Iwds in fixtures, such
# as /home/u/jobs, are data about a submit host, not references to this machine.)
FORBIDDEN = re.compile(
    r"\.\./shared\b"
    r"|(?<![\w.])/work/(?:main|shared|\.library|\.mirror)\b"
    r"|(?<![\w.])/root/(?!\.kube\b)[\w.-]+"
    r"|(?<![\w.])/tmp/bash[_]jobs"
)
# The recorded exchanges and transcripts are byte-for-byte what real systems sent.
RECORDED = ("tests/data/",)
THIS = "tests/test_repo_hygiene.py"


def tracked_files() -> list[str]:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout (an sdist or a copied tree)")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    return [name for name in out.stdout.decode().split("\0") if name]


def outside_references(text: str) -> list[str]:
    return [m.group(0) for m in FORBIDDEN.finditer(text)]


# Samples are assembled from parts, so this file itself names no outside path.
SIBLING = ".." + "/shared"
WORKSPACE = "/work" + "/shared"


@pytest.mark.parametrize("text, found", [
    (f"see {SIBLING}/docs/x.md", [SIBLING]),
    ('REC = Path(__file__).parents[2] / ".." / "shared"', []),   # caught by the read test below
    (f"from {WORKSPACE}/transcripts/gm.txt", [WORKSPACE]),
    ("cd " + "/work" + "/main && make", ["/work" + "/main"]),
    ("cached at " + "/root" + "/.cache/pip", ["/root" + "/.cache"]),
    ("KUBECONFIG=/root/.kube/config", []),
    ("Iwd = /home/u/jobs", []),
    ("path: /opt/kgahp/bin/kgahp", []),
])
def test_pattern_finds_outside_paths(text: str, found: list[str]) -> None:
    assert outside_references(text) == found


def test_no_tracked_file_names_a_path_outside_the_repository() -> None:
    offenders = []
    for name in tracked_files():
        if name.startswith(RECORDED):
            continue
        path = REPO / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for ref in outside_references(text):
            offenders.append(f"{name}: {ref}")
    assert not offenders, "tracked files reach outside the repository:\n" + "\n".join(offenders)


def test_no_code_builds_a_path_to_a_sibling_of_the_checkout() -> None:
    # `parents[N] / ".." / "shared"` names no path literally, so it needs its own search.
    sibling = re.compile(r"""["']\.\.["']\s*/\s*["']shared["']""")
    offenders = [name for name in tracked_files()
                 if name.endswith(".py") and name != THIS
                 and sibling.search((REPO / name).read_text(encoding="utf-8"))]
    assert not offenders


def test_recorded_data_is_in_the_repository() -> None:
    data = REPO / "tests" / "data"
    assert len(list((data / "k8s-recordings-v1.28").glob("*.json"))) > 100
    assert len(list((data / "k8s-recordings-v1.36").glob("*.json"))) > 200
    assert (data / "transcripts" / "gridmanager-25.0.13.txt").is_file()
