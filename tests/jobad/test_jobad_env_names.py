"""kgahp accepts the environment variable names Kubernetes v1.36 accepts, refuses only what it
refuses, and says why in the API server's own words (the sim's validation is pinned to the
v1.36 recordings: 03i2 accepts `1BAD NAME`)."""

from __future__ import annotations

import json

import pytest

from kgahp.errors import JobAdError
from kgahp.jobad.envlist import ENV_NAME_RULE, env_name_problems, parse_v2
from kgahp.podspec.values import check_env_name
from kgahp_sim.validation import ENV_MSG, pod_causes

NAMES = ["PATH", "1VAR", "MY:VAR", "1BAD NAME", "$(id)", "a.b-c_d", "~", " ", ".x", "x..",
         ".", "..", "..x", "A=B", "=", "TAB\tX", "NEW\nLINE", "NAÏVE", "\x7f", ""]


def cluster_refuses(name: str) -> list[str]:
    pod = {"metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "i", "env": [{"name": name}]}]}}
    return [c.message for c in pod_causes(pod) if ".env[" in c.field]


def test_the_sentence_is_the_api_servers() -> None:
    assert ENV_NAME_RULE == ENV_MSG


@pytest.mark.parametrize("name", NAMES)
def test_kgahp_refuses_exactly_what_the_cluster_refuses(name: str) -> None:
    refused = cluster_refuses(name)
    if not name:
        assert refused == ["Required value"]
        assert env_name_problems(name)
        return
    prefix = f"Invalid value: {json.dumps(name, ensure_ascii=False)}: "
    assert [m.removeprefix(prefix) for m in refused] == env_name_problems(name)
    if refused:
        with pytest.raises(JobAdError) as caught:
            check_env_name(name)
        for problem in env_name_problems(name):
            assert problem in str(caught.value)
    else:
        assert check_env_name(name) == name


def test_names_the_old_rule_refused_reach_the_pod() -> None:
    assert parse_v2("1VAR=a MY:VAR=b '1BAD NAME=c'") == (
        ("1VAR", "a"), ("MY:VAR", "b"), ("1BAD NAME", "c"))
