"""V2 `Arguments` / V1 `Args` splitting.

Examples come from the HTCondor manual, condor_submit(1), description of the `arguments` submit
command ("new syntax": double quotes around the whole list, `""` for a literal double quote,
single quotes group whitespace, `''` inside single quotes for a literal single quote; "old
syntax": plain whitespace splitting). The job ad holds the list after condor_submit removed the
surrounding double quotes and undid the `""` doubling; `submit_file_v2_to_ad` does that step.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgahp.errors import JobAdError
from kgahp.jobad.arglist import job_arguments, split_v1, split_v2


def submit_file_v2_to_ad(value: str) -> str:
    """What condor_submit stores in the job ad for a new-syntax submit-file value."""
    assert value.startswith('"') and value.endswith('"')
    return value[1:-1].replace('""', '"')


MANUAL_V2_EXAMPLES = [
    ('"3 simple arguments"', ("3", "simple", "arguments")),
    ('"one ""two"" \'spacey \'\'quoted\'\' argument\'"',
     ("one", '"two"', "spacey 'quoted' argument")),
    ('"one \'two with spaces\' 3"', ("one", "two with spaces", "3")),
    ('"one \'two with \'\'quotes\'\' inside\' 3"', ("one", "two with 'quotes' inside", "3")),
]


@pytest.mark.parametrize(("submit_value", "expected"), MANUAL_V2_EXAMPLES)
def test_manual_v2_examples(submit_value: str, expected: tuple[str, ...]) -> None:
    assert split_v2(submit_file_v2_to_ad(submit_value)) == expected


def test_double_quotes_are_literal_in_the_ad_form() -> None:
    # The ClassAd-level form of the manual's example, as it appears in a submit ad
    ad_value = "one \"two\" 'spacey \"quoted\" argument'"
    assert split_v2(ad_value) == ("one", '"two"', 'spacey "quoted" argument')


@pytest.mark.parametrize(("ad_value", "expected"), [
    ("", ()),
    ("   \t ", ()),
    ("''", ("",)),                           # an explicitly empty argument
    ("a '' b", ("a", "", "b")),
    ("a'b c'd", ("ab cd",)),                 # quoted and unquoted parts join
    ("tab\tnew\nline\rcr", ("tab", "new", "line", "cr")),
    ("'it''s'", ("it's",)),
    ("back\\slash", ("back\\slash",)),       # no backslash escapes in V2
    ("  lead trail  ", ("lead", "trail")),
])
def test_v2_edge_cases(ad_value: str, expected: tuple[str, ...]) -> None:
    assert split_v2(ad_value) == expected


@pytest.mark.parametrize("ad_value", ["'open", "a 'b c", "'it''s"])
def test_v2_unbalanced_quote_is_a_job_ad_error(ad_value: str) -> None:
    with pytest.raises(JobAdError, match="unbalanced single quote"):
        split_v2(ad_value)


def test_manual_v1_example() -> None:
    # Old syntax example: `arguments = one \"two\" 'three'`; quotes are ordinary characters
    assert split_v1("one \"two\" 'three'") == ("one", '"two"', "'three'")


def test_v1_splits_only_on_htcondor_whitespace() -> None:
    assert split_v1(" a\tb\nc\rd  e ") == ("a", "b", "c", "d", "e")
    assert split_v1("a\x0bb") == ("a\x0bb",)  # vertical tab is not a separator in HTCondor


@pytest.mark.parametrize(("arguments", "args", "expected"), [
    ("x 'y z'", "ignored", ("x", "y z")),
    ("", "v1 'args'", ("v1", "'args'")),
    (None, "3600", ("3600",)),
    (None, None, ()),
    ("", "", ()),
])
def test_arguments_win_when_non_empty(arguments: str | None, args: str | None,
                                      expected: tuple[str, ...]) -> None:
    assert job_arguments(arguments, args) == expected


def quote_v2(args: list[str]) -> str:
    """Inverse of split_v2: every argument single-quoted, inner quotes doubled."""
    return " ".join("'" + arg.replace("'", "''") + "'" for arg in args)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text()))
def test_v2_round_trips_quoted_lists(args: list[str]) -> None:
    assert split_v2(quote_v2(args)) == tuple(args)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_v2_fails_exactly_on_an_odd_number_of_quotes(text: str) -> None:
    # Every closed quoted section holds an even number of quotes ('' pairs plus both ends),
    # so a list is unbalanced exactly when the count is odd.
    try:
        result = split_v2(text)
    except JobAdError:
        assert text.count("'") % 2 == 1
    else:
        assert text.count("'") % 2 == 0
        assert all(isinstance(arg, str) for arg in result)
