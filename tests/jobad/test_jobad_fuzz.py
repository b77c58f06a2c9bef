"""Whatever arrives, parse_submit_ad answers with a JobRequest or a JobAdError, nothing else."""

from __future__ import annotations

import classad2
from hypothesis import given, settings
from hypothesis import strategies as st

from kgahp.errors import JobAdError
from kgahp.jobad import parse_submit_ad
from kgahp.model import JobRequest

CONTRACT_ATTRIBUTES = [
    "JobDirectory", "Cmd", "Iwd", "StageCmd", "Arguments", "Args", "Environment", "Env",
    "EnvDelim", "In", "Out", "Err", "TransferInput", "TransferOutput", "TransferOutputRemaps",
    "x509userproxy", "KubernetesImage", "K8sImage", "k8s_image", "KubernetesNamespace",
    "K8sNamespace", "k8s_namespace", "RequestCpus", "SMPGranularity", "NodeNumber",
    "RequestMemory", "RequestDisk", "GPUNumber", "GPUModel", "BatchRuntime", "Queue",
    "BatchProject", "WholeNodes", "BatchExtraSubmitArgs", "CERequirements",
]
BASE = '[ JobDirectory = "jd"; Cmd = "/bin/true"; Iwd = "/w"'

# Unparsed ClassAd values: literals of every type, undefined/error, and raw expression text
# (which may not even parse, taking the whole ad down with it).
printable = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
values = st.one_of(
    printable.map(classad2.quote),
    st.integers(-(2 ** 70), 2 ** 70).map(str),
    st.floats().map(lambda number: f'real("{number}")'),
    st.booleans().map(lambda flag: "true" if flag else "false"),
    st.sampled_from(["undefined", "error", "{ 1, 2 }", "[ a = 1 ]", "1 / 0", '"a" + 1',
                     "RequestCpus", "SMPGranularity * 2", '"yes"', '"/dev/null"']),
    st.text(max_size=30),
)


def assert_request_or_job_ad_error(text: str) -> None:
    try:
        request = parse_submit_ad(text)
    except JobAdError as err:
        message = str(err)
        assert message and "\n" not in message and "Traceback" not in message
    else:
        assert isinstance(request, JobRequest)
        assert request.cmd and request.iwd.startswith("/") and request.cpus > 0


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_random_text(text: str) -> None:
    assert_request_or_job_ad_error(text)


@settings(max_examples=300, deadline=None)
@given(st.text().map(lambda text: BASE + "; " + text))
def test_random_text_after_a_valid_start(text: str) -> None:
    assert_request_or_job_ad_error(text)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(CONTRACT_ATTRIBUTES), values, min_size=1, max_size=4))
def test_random_values_in_contract_attributes(overrides: dict[str, str]) -> None:
    body = "; ".join(f"{name} = {value}" for name, value in overrides.items())
    assert_request_or_job_ad_error(BASE + "; " + body + " ]")


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(CONTRACT_ATTRIBUTES), values)
def test_each_attribute_alone_over_a_valid_ad(name: str, value: str) -> None:
    # the remote_X route: the value may be an unevaluated expression
    assert_request_or_job_ad_error(f"{BASE}; {name} = {value} ]")
