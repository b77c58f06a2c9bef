"""V2 `Environment` / V1 `Env` parsing.

Examples from the HTCondor manual, condor_submit(1), description of the `environment` submit
command: new syntax `environment = "one=1 two=""2"" three='spacey ''quoted'' value'"` gives
one=1, two="2", three=spacey 'quoted' value; old syntax
`environment = one=1;two=2;three="quotes have no 'special' meaning"` gives
one=1, two=2, three="quotes have no 'special' meaning".
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgahp.errors import JobAdError
from kgahp.jobad.envlist import env_name_problems, job_environment, parse_v1, parse_v2


def submit_file_v2_to_ad(value: str) -> str:
    """What condor_submit stores in the job ad for a new-syntax submit-file value."""
    return value[1:-1].replace('""', '"')


def test_manual_v2_example() -> None:
    ad_value = submit_file_v2_to_ad(
        '"one=1 two=""2"" three=\'spacey \'\'quoted\'\' value\'"')
    assert ad_value == "one=1 two=\"2\" three='spacey ''quoted'' value'"
    assert parse_v2(ad_value) == (
        ("one", "1"), ("two", '"2"'), ("three", "spacey 'quoted' value"))


def test_manual_v1_example() -> None:
    assert parse_v1("one=1;two=2;three=\"quotes have no 'special' meaning\"") == (
        ("one", "1"), ("two", "2"), ("three", "\"quotes have no 'special' meaning\""))


@pytest.mark.parametrize(("ad_value", "expected"), [
    ("BAZ=qux FOO=bar", (("BAZ", "qux"), ("FOO", "bar"))),   # the transcript's echo.sub
    ("EMPTY=", (("EMPTY", ""),)),
    ("URL=a=b=c", (("URL", "a=b=c"),)),                      # only the first '=' splits
    ("A=1 A=2 B=3", (("A", "2"), ("B", "3"))),               # last value, first position
    ("dotted.name-x=1 _u=2", (("dotted.name-x", "1"), ("_u", "2"))),
    ("", ()),
])
def test_v2_entries(ad_value: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_v2(ad_value) == expected


@pytest.mark.parametrize(("ad_value", "delimiter", "expected"), [
    ("A=1;B=2", None, (("A", "1"), ("B", "2"))),
    ("A=1|B=2;3", "|", (("A", "1"), ("B", "2;3"))),          # EnvDelim replaces ';'
    ("A=1;;  B=2 ;", None, (("A", "1"), ("B", "2 "))),       # empties skipped, lead blanks
    ("A=1\nB=2", None, (("A", "1"), ("B", "2"))),
    ("A=x y", None, (("A", "x y"),)),                        # no quoting in V1
])
def test_v1_entries(ad_value: str, delimiter: str | None,
                    expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_v1(ad_value, delimiter) == expected


def test_names_kubernetes_accepts_since_v1_30_are_kept() -> None:
    assert parse_v2("1BAD=x 'SP ACE=y' MY:VAR=z") == (("1BAD", "x"), ("SP ACE", "y"),
                                                      ("MY:VAR", "z"))


@pytest.mark.parametrize(("ad_value", "message"), [
    ("NOEQUALS", "has no '='"),
    ("=value", "empty variable name"),
    ("..BAD=x", "'..BAD' is not valid for Kubernetes: must not start with '..'"),
    ("'NAÏVE=x'", "'NAÏVE' is not valid for Kubernetes: a valid environment variable name "
     "must consist only of printable ASCII characters other than '='"),
    ("A=1 'unterminated", "unbalanced single quote"),
])
def test_v2_errors_name_the_problem(ad_value: str, message: str) -> None:
    with pytest.raises(JobAdError, match=message):
        parse_v2(ad_value)


def test_v1_entry_without_equals_is_an_error() -> None:
    with pytest.raises(JobAdError, match="'B' has no '='"):
        parse_v1("A=1;B")


def test_empty_name_error_does_not_echo_the_value() -> None:
    with pytest.raises(JobAdError) as caught:
        parse_v2("=hunter2-secret-token")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(("environment", "env", "delim", "expected"), [
    ("A=1", "B=2", None, (("A", "1"),)),
    ("", "B=2", None, (("B", "2"),)),                        # Environment = "" (transcripts)
    (None, "B=2|C=3", "|", (("B", "2"), ("C", "3"))),
    (None, None, None, ()),
])
def test_environment_wins_when_non_empty(environment: str | None, env: str | None,
                                         delim: str | None,
                                         expected: tuple[tuple[str, str], ...]) -> None:
    assert job_environment(environment, env, delim) == expected


names = st.from_regex(r"[-._a-zA-Z][-._a-zA-Z0-9]{0,20}", fullmatch=True).filter(
    lambda n: not env_name_problems(n))
values = st.text(st.characters(blacklist_characters="\x00"))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(names, values))
def test_v2_round_trips_quoted_assignments(env: dict[str, str]) -> None:
    text = " ".join("'" + f"{name}={value}".replace("'", "''") + "'"
                    for name, value in env.items())
    assert parse_v2(text) == tuple(env.items())


@settings(max_examples=200, deadline=None)
@given(st.text(), st.one_of(st.none(), st.text(min_size=1, max_size=1)))
def test_random_lists_give_pairs_or_job_ad_error(text: str, delimiter: str | None) -> None:
    for parse in (lambda: parse_v2(text), lambda: parse_v1(text, delimiter)):
        try:
            pairs = parse()
        except JobAdError:
            continue
        assert all(name and "=" not in name for name, _ in pairs)
