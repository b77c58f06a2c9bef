"""CERequirements unwinding (docs/protocol.md: blahpd's classad_binary_op_unwind)."""

from __future__ import annotations

import classad2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgahp.jobad.cereq import unwind, unwind_expression
from kgahp.model import Scalar

UNWIND_TABLE: list[tuple[str, dict[str, Scalar]]] = [
    # the transcript's rich.sub, as the gridmanager built it from "KubernetesImage,RequestCpus"
    ('KubernetesImage == "python:3.12" && RequestCpus == 4',
     {"KubernetesImage": "python:3.12", "RequestCpus": 4}),
    # what HTCondor-CE builds from default_CERequirements
    ('k8s_image == "repo/img:tag" && CondorCE == 1', {"k8s_image": "repo/img:tag", "CondorCE": 1}),
    ('Walltime =?= 3600', {"Walltime": 3600}),
    ("Walltime < 3600", {"Walltime_Max": 3600}),
    ("Walltime <= 3600", {"Walltime_Max": 3600}),
    ("Memory > 2.5", {"Memory_Min": 2.5}),
    ("Memory >= 2", {"Memory_Min": 2}),
    ("3600 > Walltime", {"Walltime_Max": 3600}),             # literal on the left flips sides
    ("2 <= Memory", {"Memory_Min": 2}),
    ('"x" == Name', {"Name": "x"}),
    ("Flag == true && Other == false", {"Flag": True, "Other": False}),
    ("Neg == -1", {"Neg": -1}),
    ("MY.Scoped == 7", {"Scoped": 7}),
    ('A == 1 && (B == 2 && (C == "three"))', {"A": 1, "B": 2, "C": "three"}),
    ('member("x", Tags) && member("y", Tags)', {"Tags[0]": "x", "Tags[1]": "y"}),
    ('S == "quote \\" and && inside"', {"S": 'quote " and && inside'}),
    ("A == 1 && A == 2", {"A": 2}),                          # later wins, like shell assignments
    # skipped or ignored, never an error
    ("Missing == undefined && Kept == 1", {"Kept": 1}),      # a listed name the job lacked
    ("A == 1 || B == 2", {}),
    ("A == 1 && (B == 2 || C == 3)", {"A": 1}),
    ("A ? B == 1 : C == 2", {}),
    ("A != 1 && B =!= 2", {}),
    ("A == B", {}),
    ('Name < "text"', {}),                                   # _Max/_Min only for numbers
    ("A == error", {}),
    ("A == {1, 2}", {}),
    ("strcmp(A, \"x\") == 0", {}),
    ("TARGET.Other == 1", {}),
    ("(A == 1) | (B == 2)", {}),
    ("true", {}),
]


@pytest.mark.parametrize(("expression", "expected"), UNWIND_TABLE)
def test_unwind_table(expression: str, expected: dict[str, Scalar]) -> None:
    ad = classad2.ClassAd()
    ad["CERequirements"] = classad2.ExprTree(expression)
    assert unwind(ad) == expected
    assert unwind_expression(expression) == expected


def test_string_valued_cerequirements_is_parsed_first() -> None:
    # the old route style: set_default_remote_cerequirements = strcat("Walltime == 3600 && ...")
    ad = classad2.ClassAd()
    ad["CERequirements"] = 'Walltime == 3600 && AccountingGroup == "group_atlas"'
    assert unwind(ad) == {"Walltime": 3600, "AccountingGroup": "group_atlas"}


def test_string_value_computed_in_the_ad_is_parsed_too() -> None:
    ad = classad2.parseOne(
        '[ Group = "cms"; CERequirements = strcat("Group == \\"", Group, "\\"") ]')
    assert unwind(ad) == {"Group": "cms"}


@pytest.mark.parametrize("ad_text", [
    "[ Cmd = \"/bin/true\" ]",
    "[ CERequirements = \"\" ]",
    "[ CERequirements = \"this is (not an expression\" ]",
    "[ CERequirements = 5 ]",
    "[ CERequirements = undefined ]",
])
def test_nothing_to_unwind(ad_text: str) -> None:
    assert unwind(classad2.parseOne(ad_text)) == {}


def test_lookup_is_case_insensitive() -> None:
    assert unwind(classad2.parseOne('[ cerequirements = foo == "X" ]')) == {"foo": "X"}


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_random_strings_never_raise(text: str) -> None:
    ad = classad2.ClassAd()
    ad["CERequirements"] = text.replace("\x00", "")
    result = unwind(ad)
    assert all(isinstance(name, str) for name in result)
    assert all(isinstance(value, (str, int, float, bool)) for value in result.values())


literals = st.one_of(st.integers(-10**6, 10**6), st.booleans(),
                   st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
                           max_size=20))
idents = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True).filter(
    lambda name: name.lower() not in {"true", "false", "undefined", "error", "is", "isnt",
                                      "my", "target", "parent"})


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(idents, literals, min_size=1, max_size=6))
def test_conjunctions_of_equalities_round_trip(pairs: dict[str, Scalar]) -> None:
    expression = " && ".join(f"{name} == {_unparse(value)}" for name, value in pairs.items())
    assert unwind_expression(expression) == pairs


def _unparse(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return classad2.quote(value)
    return str(value)


def test_a_remembered_expression_gives_a_fresh_equal_answer_each_time() -> None:
    ad = classad2.ClassAd()
    ad["CERequirements"] = classad2.ExprTree('KubernetesImage == "python:3.12" && '
                                              'RequestCpus == 4')
    first = unwind(ad)
    first["RequestCpus"] = 99                  # the caller's dict is its own
    assert unwind(ad) == {"KubernetesImage": "python:3.12", "RequestCpus": 4}


def test_an_expression_calling_a_function_is_read_afresh_each_time() -> None:
    from kgahp.jobad import cereq

    ad = classad2.ClassAd()
    ad["CERequirements"] = classad2.ExprTree("Started == time() && "
                                              'member("gpu", Features)')
    before = cereq._remembered.cache_info().currsize
    unwind(ad)
    assert cereq._remembered.cache_info().currsize == before
    ad["CERequirements"] = classad2.ExprTree('member("gpu", Features) && Zone == "a"')
    assert unwind(ad) == {"Features[0]": "gpu", "Zone": "a"}   # member() is remembered
    assert cereq._remembered.cache_info().currsize == before + 1
