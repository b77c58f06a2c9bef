from __future__ import annotations

import copy
from typing import Any

import pytest

from kgahp.podspec.merge import strategic_merge

CASES: list[tuple[str, Any, Any, Any]] = [
    ("scalar replaced", {"a": 1}, {"a": 2}, {"a": 2}),
    ("map merged", {"m": {"x": 1, "y": 2}}, {"m": {"y": 3, "z": 4}},
     {"m": {"x": 1, "y": 3, "z": 4}}),
    ("null deletes", {"a": 1, "b": 2}, {"a": None}, {"b": 2}),
    ("null deletes nested", {"m": {"x": 1, "y": 2}}, {"m": {"x": None}}, {"m": {"y": 2}}),
    ("plain list replaced", {"l": [1, 2]}, {"l": [3]}, {"l": [3]}),
    ("tolerations appended", {"tolerations": [{"key": "a"}]}, {"tolerations": [{"key": "b"}]},
     {"tolerations": [{"key": "a"}, {"key": "b"}]}),
    ("containers merged by name",
     {"containers": [{"name": "job", "image": "a", "env": [{"name": "X", "value": "1"}]},
                     {"name": "side", "image": "s"}]},
     {"containers": [{"name": "job", "env": [{"name": "Y", "value": "2"}]},
                     {"name": "new", "image": "n"}]},
     {"containers": [{"name": "job", "image": "a",
                      "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
                     {"name": "side", "image": "s"}, {"name": "new", "image": "n"}]}),
    ("env value replaced by name", {"env": [{"name": "X", "value": "1"}]},
     {"env": [{"name": "X", "value": "2"}]}, {"env": [{"name": "X", "value": "2"}]}),
    ("volumes merged by name", {"volumes": [{"name": "v", "emptyDir": {}}]},
     {"volumes": [{"name": "v", "emptyDir": {"medium": "Memory"}}, {"name": "w"}]},
     {"volumes": [{"name": "v", "emptyDir": {"medium": "Memory"}}, {"name": "w"}]}),
    ("volumeMounts merged by mountPath",
     {"volumeMounts": [{"name": "v", "mountPath": "/a"}]},
     {"volumeMounts": [{"name": "v", "mountPath": "/b"}, {"name": "w", "mountPath": "/a"}]},
     {"volumeMounts": [{"name": "w", "mountPath": "/a"}, {"name": "v", "mountPath": "/b"}]}),
    ("$patch delete removes an item", {"containers": [{"name": "a"}, {"name": "b"}]},
     {"containers": [{"name": "a", "$patch": "delete"}]}, {"containers": [{"name": "b"}]}),
    ("new content loses nulls and directives", {}, {"m": {"x": None, "$patch": "replace", "y": 1}},
     {"m": {"y": 1}}),
    ("list merge onto missing list", {}, {"containers": [{"name": "a"}]},
     {"containers": [{"name": "a"}]}),
    ("map over scalar replaces", {"m": 1}, {"m": {"x": 1}}, {"m": {"x": 1}}),
]


@pytest.mark.parametrize(("base", "patch", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_strategic_merge(base: Any, patch: Any, expected: Any) -> None:
    base_before, patch_before = copy.deepcopy(base), copy.deepcopy(patch)
    assert strategic_merge(base, patch) == expected
    assert base == base_before and patch == patch_before   # inputs untouched


def test_result_shares_nothing_mutable_with_its_inputs() -> None:
    """The result is the caller's to change: no dict or list of it belongs to an input, and a
    part the input holds twice (a YAML alias) is two independent parts in the result."""
    import datetime

    shared = {"limits": {"cpu": "1"}}
    base = {"containers": [{"name": "a", "resources": shared}, {"name": "b", "resources": shared}],
            "when": datetime.date(2026, 1, 1)}
    patch = {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}],
             "tolerations": [{"key": "t"}]}
    out = strategic_merge(base, patch)
    out["containers"][0]["resources"]["limits"]["cpu"] = "2"
    out["containers"][0]["env"].append({"name": "Y"})
    out["tolerations"][0]["key"] = "changed"
    assert shared == {"limits": {"cpu": "1"}}
    assert out["containers"][1]["resources"] == {"limits": {"cpu": "1"}}
    assert patch["containers"][0]["env"] == [{"name": "X", "value": "1"}]
    assert patch["tolerations"] == [{"key": "t"}]
    assert out["when"] == datetime.date(2026, 1, 1)
