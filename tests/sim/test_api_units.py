"""Pure pieces of the sim API: quantities, selectors, patches, validation messages."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgahp_sim.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from kgahp_sim.quantity import QUANTITY_REGEX_ERROR, QuantityError, parse_quantity
from kgahp_sim.selectors import SelectorError, field_matcher, label_matcher
from kgahp_sim.validation import check_qualified_name, pod_causes

QUANTITIES = [
    ("100m", Fraction(1, 10)), ("1", Fraction(1)), ("1.5", Fraction(3, 2)),
    ("64Mi", Fraction(64 * 2**20)), ("1Gi", Fraction(2**30)), ("2k", Fraction(2000)),
    ("1e3", Fraction(1000)), ("5E-1", Fraction(1, 2)), ("-1Gi", Fraction(-(2**30))),
    ("250u", Fraction(250, 10**6)), ("3n", Fraction(3, 10**9)), (2, Fraction(2)),
]


@pytest.mark.parametrize("text,value", QUANTITIES)
def test_quantities(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["2GB", "abc", "", "1..2", "Gi", True])
def test_bad_quantities(text):
    with pytest.raises(QuantityError) as err:
        parse_quantity(text)
    assert str(err.value) in (QUANTITY_REGEX_ERROR, "unable to parse quantity's suffix")


KEYS = st.sampled_from(["app", "tier", "example.com/x", "k"])
VALUES = st.sampled_from(["a", "b", "c-1", "d.e"])
LABELS = st.dictionaries(KEYS, VALUES, max_size=4)


@settings(max_examples=60, deadline=None)
@given(labels=LABELS, key=KEYS, value=VALUES, other=VALUES)
def test_label_selector_semantics(labels, key, value, other):
    obj = {"metadata": {"labels": labels}}
    has = key in labels
    assert label_matcher(f"{key}={value}")(obj) == (labels.get(key) == value)
    assert label_matcher(f"{key}!={value}")(obj) == (labels.get(key) != value)
    assert label_matcher(key)(obj) == has
    assert label_matcher(f"!{key}")(obj) == (not has)
    assert label_matcher(f"{key} in ({value},{other})")(obj) == (
        labels.get(key) in (value, other))
    assert label_matcher(f"{key} notin ({value})")(obj) == (labels.get(key) != value)
    both = label_matcher(f"{key}={value},!{key}")(obj)
    assert both is False


def test_empty_selector_matches_everything():
    assert label_matcher("")({"metadata": {}})
    assert field_matcher("pods", "")({"metadata": {}})


@pytest.mark.parametrize("selector", ["app in rec", "app=bad value!", "in (x)", "=x", "a,,"])
def test_malformed_label_selectors(selector):
    with pytest.raises(SelectorError):
        label_matcher(selector)


def test_field_selectors_per_resource():
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"},
           "status": {"phase": "Running"}}
    assert field_matcher("pods", "spec.nodeName=n1,status.phase!=Failed")(pod)
    assert not field_matcher("pods", "status.phase==Pending")(pod)
    event = {"involvedObject": {"name": "p", "kind": "Pod"}, "metadata": {"name": "e"}}
    assert field_matcher("events", "involvedObject.name=p,involvedObject.kind=Pod")(event)
    with pytest.raises(SelectorError, match=r"field label not supported: status\.phase"):
        field_matcher("secrets", "status.phase=x")


JSON = st.recursive(st.none() | st.integers() | st.text(max_size=3),
                    lambda inner: st.dictionaries(st.text(max_size=3), inner, max_size=3),
                    max_leaves=8)


@settings(max_examples=60, deadline=None)
@given(target=st.dictionaries(st.text(max_size=3), JSON, max_size=4),
       patch=st.dictionaries(st.text(max_size=3), JSON, max_size=4))
def test_merge_patch_laws(target, patch):
    result = merge_patch(target, patch)
    for key, value in patch.items():
        if value is None:
            assert key not in result
        elif not isinstance(value, dict):
            assert result[key] == value
    for key in target:
        if key not in patch:
            assert result[key] == target[key]
    assert merge_patch(result, patch) == result  # idempotent


def test_strategic_merge_by_key_and_directives():
    target = {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}],
                       "tolerations": [{"key": "t1"}]}}
    patch = {"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "w"},
                                     {"name": "a", "$patch": "delete"}],
                      "tolerations": [{"key": "t2"}]}}
    result = strategic_merge_patch(target, patch)
    assert result["spec"]["containers"] == [{"name": "c", "image": "w"},
                                            {"name": "b", "image": "z"}]
    assert result["spec"]["tolerations"] == [{"key": "t2"}]  # no merge key: replaced
    assert target["spec"]["containers"][0] == {"name": "a", "image": "x"}  # input untouched


def test_json_patch_operations_and_failures():
    doc = {"a": {"b": [1, 2]}, "c": 1}
    out = json_patch(doc, [{"op": "add", "path": "/a/b/-", "value": 3},
                           {"op": "replace", "path": "/c", "value": 2},
                           {"op": "move", "from": "/c", "path": "/d"},
                           {"op": "remove", "path": "/a/b/0"},
                           {"op": "test", "path": "/d", "value": 2}])
    assert out == {"a": {"b": [2, 3]}, "d": 2}
    assert doc == {"a": {"b": [1, 2]}, "c": 1}
    for bad in ([{"op": "test", "path": "/c", "value": 9}],
                [{"op": "remove", "path": "/nope"}], [{"op": "replace", "path": "/a/x/y"}]):
        with pytest.raises(PatchError):
            json_patch(doc, bad)


@pytest.mark.parametrize("key,ok", [("app", True), ("example.com/app", True), ("a/b/c", False),
                                    ("bad key", False), ("-x", False), ("x" * 64, False),
                                    ("Example.com/x", False), ("/x", False)])
def test_qualified_label_keys(key, ok):
    assert (check_qualified_name("metadata.labels", key) == []) == ok


def test_pod_causes_keep_the_apiserver_order():
    pod = {"metadata": {"name": "Bad"},
           "spec": {"restartPolicy": "Sometimes", "activeDeadlineSeconds": 0,
                    "containers": [{"name": "c", "env": [{"name": "x=1"}]},
                                   {"name": "c", "image": "i"}]}}
    fields = [c.field for c in pod_causes(pod)]
    assert fields == ["metadata.name", "spec.containers[0].image",
                      "spec.containers[0].env[0].name", "spec.containers[1].name",
                      "spec.restartPolicy", "spec.activeDeadlineSeconds"]
