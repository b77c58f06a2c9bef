"""parse_submit_ad: one row per attribute of the contract, and one per refusal."""

from __future__ import annotations

from typing import Any

import classad2
import pytest

from kgahp.errors import JobAdError
from kgahp.jobad import parse_output_remaps, parse_submit_ad

BASE: dict[str, Any] = {
    "JobDirectory": "home_bl_ce.example.org_9619_ce.example.org_12.0_1767225600",
    "Cmd": "/bin/echo",
    "Iwd": "/home/u/jobs",
}


def expr(text: str) -> classad2.ExprTree:
    """An unevaluated value, as remote_X attributes arrive."""
    return classad2.ExprTree(text)


def submit_ad(attributes: dict[str, Any], drop: tuple[str, ...] = ()) -> str:
    """The ad as the gridmanager would send it (new ClassAd syntax, unparsed by classad2)."""
    ad = classad2.ClassAd()
    for name, value in {**BASE, **attributes}.items():
        if name not in drop:
            ad[name] = value
    return repr(ad)


# (attributes added to BASE, JobRequest field, expected value)
ATTRIBUTE_ROWS: list[tuple[dict[str, Any], str, Any]] = [
    # required basics
    ({}, "job_directory", BASE["JobDirectory"]),
    ({}, "iwd", "/home/u/jobs"),
    ({}, "cmd", "/bin/echo"),
    ({"Cmd": "bin/run.sh"}, "cmd", "/home/u/jobs/bin/run.sh"),
    ({"Cmd": "python3", "StageCmd": False}, "cmd", "python3"),
    # StageCmd
    ({}, "stage_cmd", True),
    ({"StageCmd": False}, "stage_cmd", False),
    ({"StageCmd": "no"}, "stage_cmd", False),
    # arguments / environment
    ({"Arguments": "a 'b c'"}, "arguments", ("a", "b c")),
    ({"Args": "x y"}, "arguments", ("x", "y")),
    ({"Arguments": "", "Args": "v1 only"}, "arguments", ("v1", "only")),
    ({"Arguments": "v2", "Args": "v1"}, "arguments", ("v2",)),
    ({}, "arguments", ()),
    ({"Environment": "A=1 B='x y'"}, "environment", (("A", "1"), ("B", "x y"))),
    ({"Env": "A=1;B=2"}, "environment", (("A", "1"), ("B", "2"))),
    ({"Env": "A=1|B=2", "EnvDelim": "|"}, "environment", (("A", "1"), ("B", "2"))),
    ({"Environment": "", "Env": "C=3"}, "environment", (("C", "3"),)),
    # stdio
    ({"In": "/dev/null"}, "stdin", None),
    ({"In": "input.txt"}, "stdin", "input.txt"),
    ({"In": ""}, "stdin", None),
    ({"Out": "_condor_stdout"}, "stdout", "_condor_stdout"),
    ({"Out": "/abs/out"}, "stdout", "/abs/out"),
    ({"Err": "_condor_stderr"}, "stderr", "_condor_stderr"),
    ({}, "stdout", None),
    # transfers
    ({"TransferInput": " a.txt , /abs/b, data/ ,"}, "transfer_input", ("a.txt", "/abs/b", "data/")),
    ({}, "transfer_input", ()),
    ({}, "transfer_output", None),
    ({"TransferOutput": ""}, "transfer_output", ()),
    ({"TransferOutput": "out1, sub/out2"}, "transfer_output", ("out1", "sub/out2")),
    ({"TransferOutputRemaps": "a=b; c = /d/e"}, "output_remaps", (("a", "b"), ("c", "/d/e"))),
    ({}, "output_remaps", ()),
    # proxy
    ({"x509userproxy": "/tmp/x509up_u1"}, "x509userproxy", "/tmp/x509up_u1"),
    ({"x509userproxy": "proxy.pem"}, "x509userproxy", "/home/u/jobs/proxy.pem"),
    ({}, "x509userproxy", None),
    # image: direct names in priority order, then CERequirements
    ({"KubernetesImage": "a:1"}, "image", "a:1"),
    ({"K8sImage": "b:2"}, "image", "b:2"),
    ({"k8s_image": "c:3"}, "image", "c:3"),
    ({"KubernetesImage": "a:1", "K8sImage": "b:2"}, "image", "a:1"),
    ({"CERequirements": expr('KubernetesImage == "ce:1"')}, "image", "ce:1"),
    ({"CERequirements": expr('k8s_image == "ce:2"')}, "image", "ce:2"),
    ({"K8sImage": "direct", "CERequirements": expr('KubernetesImage == "ce"')}, "image", "direct"),
    ({"KubernetesImage": expr("undefined"), "K8sImage": "b:2"}, "image", "b:2"),
    ({"KubernetesImage": ""}, "image", None),
    ({}, "image", None),
    # namespace
    ({"KubernetesNamespace": "team-a"}, "namespace", "team-a"),
    ({"K8sNamespace": "osg"}, "namespace", "osg"),
    ({"k8s_namespace": "ns1"}, "namespace", "ns1"),
    ({"CERequirements": expr('K8sNamespace == "osg" && CondorCE == 1')}, "namespace", "osg"),
    ({}, "namespace", None),
    # CPUs
    ({"RequestCpus": 4}, "cpus", 4),
    ({"RequestCpus": 0.5}, "cpus", 0.5),
    ({"RequestCpus": 4}, "cpus_explicit", True),
    ({"CERequirements": expr("RequestCpus == 2")}, "cpus", 2),
    ({"SMPGranularity": 8}, "cpus", 8),
    ({"SMPGranularity": 8}, "cpus_explicit", True),
    ({"NodeNumber": 3}, "cpus", 3),
    ({"SMPGranularity": 8, "NodeNumber": 3}, "cpus", 8),
    ({"RequestCpus": 2, "SMPGranularity": 8}, "cpus", 2),
    ({"RequestCpus": expr("SMPGranularity / 2"), "SMPGranularity": 8}, "cpus", 4),
    ({}, "cpus", 1),
    ({}, "cpus_explicit", False),
    # memory, disk
    ({"RequestMemory": 2048}, "memory_mib", 2048),
    ({"RequestMemory": 2048.25}, "memory_mib", 2049),
    ({"RequestMemory": expr("1024 * 2")}, "memory_mib", 2048),
    ({"RequestMemory": expr("undefined")}, "memory_mib", None),
    ({}, "memory_mib", None),
    ({"RequestDisk": 1000000}, "disk_kib", 1000000),
    ({"CERequirements": expr("RequestDisk == 500")}, "disk_kib", 500),
    ({}, "disk_kib", None),
    # accelerators
    ({"GPUNumber": 2}, "gpus", 2),
    ({}, "gpus", 0),
    ({"GPUModel": "A100"}, "gpu_model", "A100"),
    # GPUNumber/GPUModel as HTCondor-CE routes pass them: in CERequirements, the direct one first
    ({"CERequirements": expr("GPUNumber == 2")}, "gpus", 2),
    ({"CERequirements": expr("gpunumber == 3")}, "gpus", 3),
    ({"CERequirements": expr("GPUNumber == 1.5")}, "gpus", 2),
    ({"GPUNumber": 1, "CERequirements": expr("GPUNumber == 4")}, "gpus", 1),
    ({"GPUNumber": expr("undefined"), "CERequirements": expr("GPUNumber == 4")}, "gpus", 4),
    ({"CERequirements": expr("GPUNumber == 0")}, "gpus", 0),
    ({"CERequirements": expr('GPUModel == "A100"')}, "gpu_model", "A100"),
    ({"GPUModel": "V100", "CERequirements": expr('GPUModel == "A100"')}, "gpu_model", "V100"),
    ({"GPUMode": "shared"}, "gpu_mode", "shared"),
    ({"GPUMode": " exclusive_process "}, "gpu_mode", "exclusive_process"),
    ({"gpumode": "Shared"}, "gpu_mode", "Shared"),
    ({"GPUMode": expr('strcat("excl", "usive")')}, "gpu_mode", "exclusive"),
    ({"GPUMode": ""}, "gpu_mode", None),
    ({"GPUMode": expr("undefined")}, "gpu_mode", None),
    ({}, "gpu_mode", None),
    ({"CERequirements": expr('GPUMode == "shared"')}, "gpu_mode", "shared"),
    ({"CERequirements": expr('gpumode == "shared"')}, "gpu_mode", "shared"),
    ({"GPUMode": "direct", "CERequirements": expr('GPUMode == "ce"')}, "gpu_mode", "direct"),
    ({"MICNumber": 2}, "mics", 2),
    ({"MICNumber": 1.5}, "mics", 2),
    ({"micnumber": 3}, "mics", 3),
    ({"MICNumber": expr("1 + 1")}, "mics", 2),
    ({"MICNumber": 0}, "mics", 0),
    ({"MICNumber": expr("undefined")}, "mics", 0),
    ({}, "mics", 0),
    ({"CERequirements": expr("MICNumber == 4")}, "mics", 4),
    ({"MICNumber": 1, "CERequirements": expr("MICNumber == 4")}, "mics", 1),
    # batch knobs
    ({"BatchRuntime": 600}, "runtime_seconds", 600),
    ({"BatchRuntime": 59.5}, "runtime_seconds", 60),
    ({"BatchRuntime": 0}, "runtime_seconds", None),
    ({}, "runtime_seconds", None),
    ({"Queue": "myqueue"}, "queue", "myqueue"),
    ({"Queue": ""}, "queue", None),
    ({"BatchProject": "myproject"}, "project", "myproject"),
    ({"WholeNodes": True}, "whole_node", True),
    ({"WholeNodes": "yes"}, "whole_node", True),
    ({"WholeNodes": "TRUE"}, "whole_node", True),
    ({"WholeNodes": 0}, "whole_node", False),
    ({}, "whole_node", False),
    ({"BatchExtraSubmitArgs": "--foo=bar"}, "extra_submit_args", "--foo=bar"),
    ({"BatchExtraSubmitArgs": "a: 1\nb: 2\n"}, "extra_submit_args", "a: 1\nb: 2\n"),
    # unwound CERequirements
    ({"CERequirements": expr("Walltime <= 3600 && CondorCE == 1")}, "ce_attributes",
     {"Walltime_Max": 3600, "CondorCE": 1}),
    ({}, "ce_attributes", {}),
]


@pytest.mark.parametrize(("attributes", "field", "expected"), ATTRIBUTE_ROWS)
def test_attribute_contract(attributes: dict[str, Any], field: str, expected: Any) -> None:
    request = parse_submit_ad(submit_ad(attributes))
    assert getattr(request, field) == expected


def test_names_are_case_insensitive() -> None:
    text = ('[ jobdirectory = "jd"; CMD = "/bin/true"; iwd = "/w"; requestmemory = 100; '
            'KUBERNETESIMAGE = "img:1"; smpgranularity = 2; '
            'cerequirements = k8s_namespace == "x" ]')
    request = parse_submit_ad(text)
    assert (request.job_directory, request.cmd, request.iwd) == ("jd", "/bin/true", "/w")
    assert (request.memory_mib, request.image, request.cpus, request.namespace) == (
        100, "img:1", 2, "x")


def test_attributes_offer_every_scalar_by_lower_case_name() -> None:
    request = parse_submit_ad(submit_ad({
        "SiteTag": "blue", "Ratio": 0.5, "Flag": True, "Sum": expr("1 + 2"),
        "List": [1, 2], "Nothing": expr("undefined"), "Broken": expr("1 / 0")}))
    attributes = request.attributes
    assert attributes["sitetag"] == "blue"
    assert attributes["ratio"] == 0.5
    assert attributes["flag"] is True
    assert attributes["sum"] == 3
    assert attributes["cmd"] == "/bin/echo"
    for skipped in ("list", "nothing", "broken", "SiteTag"):
        assert skipped not in attributes


@pytest.mark.parametrize(("text", "expected"), [
    ("a=b;c=d", (("a", "b"), ("c", "d"))),
    ("  a = b ;  c = d  ", (("a", "b"), ("c", "d"))),
    ("we\\=ird=x", (("we=ird", "x"),)),                 # \= escapes '=' in the name
    ("a=semi\\;colon;b=c", (("a", "semi;colon"), ("b", "c"))),  # \; escapes ';' in the dest
    ("a=back\\slash", (("a", "back\\slash"),)),         # other backslashes stay
    ("noequals;a=b", (("a", "b"),)),                    # HTCondor skips such a field
    ("a=b;trailing", (("a", "b"),)),
    ("a\t=\nb", (("a", "b"),)),                         # tabs and newlines are dropped
    ("", ()),
])
def test_output_remaps_follow_htcondor_filename_remap_find(
        text: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_output_remaps(text) == expected


# (attributes added to BASE, attributes removed, words the message must contain)
REFUSALS: list[tuple[dict[str, Any], tuple[str, ...], str]] = [
    ({}, ("JobDirectory",), "JobDirectory is missing"),
    ({}, ("Cmd",), "Cmd is missing"),
    ({}, ("Iwd",), "Iwd is missing"),
    ({"Cmd": expr("undefined")}, (), "Cmd is missing"),
    ({"JobDirectory": ""}, (), "JobDirectory must not be empty"),
    ({"Iwd": "relative/dir"}, (), "Iwd must be an absolute path"),
    ({"Cmd": 42}, (), "Cmd must be a string, not a number"),
    ({"RequestMemory": "lots"}, (), "RequestMemory must be a number, not a string"),
    ({"RequestMemory": True}, (), "RequestMemory must be a number, not a boolean"),
    ({"RequestMemory": -1}, (), "RequestMemory must not be negative"),
    ({"RequestMemory": 1e30}, (), "RequestMemory is implausibly large"),
    ({"RequestMemory": float("inf")}, (), "RequestMemory must be a finite number"),
    ({"RequestMemory": expr("1 / 0")}, (), "RequestMemory evaluates to an error"),
    ({"RequestMemory": [1, 2]}, (), "RequestMemory must be a number, not a list"),
    ({"RequestDisk": -5}, (), "RequestDisk must not be negative"),
    ({"RequestCpus": 0}, (), "RequestCpus must be at least"),
    ({"RequestCpus": float("nan")}, (), "RequestCpus must be a finite number"),
    ({"SMPGranularity": -2}, (), "SMPGranularity must be at least"),
    ({"NodeNumber": 1e12}, (), "NodeNumber is implausibly large"),
    ({"CERequirements": expr('RequestCpus == "four"')}, (),
     "RequestCpus (in CERequirements) must be a number"),
    ({"GPUNumber": "one"}, (), "GPUNumber must be a number"),
    ({"CERequirements": expr('GPUNumber == "two"')}, (),
     "GPUNumber (in CERequirements) must be a number"),
    ({"CERequirements": expr("GPUNumber == -1")}, (),
     "GPUNumber (in CERequirements) must not be negative"),
    ({"GPUMode": 1}, (), "GPUMode must be a string, not a number"),
    ({"GPUMode": expr('"excl" + "usive"')}, (), "GPUMode evaluates to an error"),
    ({"GPUMode": "shared; rm -rf /"}, (), "GPUMode must be a GPU mode name"),
    ({"GPUMode": "$(id)"}, (), "GPUMode must be a GPU mode name"),
    ({"GPUMode": "`id`"}, (), "GPUMode must be a GPU mode name"),
    ({"GPUMode": "{a: [1]}"}, (), "GPUMode must be a GPU mode name"),
    ({"GPUMode": "*"}, (), "GPUMode must be a GPU mode name"),
    ({"GPUMode": "-G"}, (), "GPUMode must be a GPU mode name"),
    ({"GPUMode": "shared:nvidia.com/gpu"}, (), "GPUMode must be a GPU mode name"),
    ({"GPUMode": "sh\u0430red"}, (), "GPUMode must be a GPU mode name"),   # Cyrillic a
    ({"GPUMode": "\uff53hared"}, (), "GPUMode must be a GPU mode name"),   # fullwidth s
    ({"GPUMode": "a" * 64}, (), "GPUMode must be a GPU mode name"),
    ({"GPUMode": "sha\nred"}, (), "GPUMode contains a control character"),
    ({"CERequirements": expr('GPUMode == "a b"')}, (),
     "GPUMode (in CERequirements) must be a GPU mode name"),
    ({"MICNumber": -1}, (), "MICNumber must not be negative"),
    ({"MICNumber": 1e30}, (), "MICNumber is implausibly large"),
    ({"MICNumber": 2**62}, (), "MICNumber is implausibly large"),
    ({"MICNumber": "two"}, (), "MICNumber must be a number, not a string"),
    ({"MICNumber": True}, (), "MICNumber must be a number, not a boolean"),
    ({"MICNumber": float("nan")}, (), "MICNumber must be a finite number"),
    ({"MICNumber": expr("1 / 0")}, (), "MICNumber evaluates to an error"),
    ({"CERequirements": expr('MICNumber == "x"')}, (),
     "MICNumber (in CERequirements) must be a number"),
    ({"BatchRuntime": -60}, (), "BatchRuntime must not be negative"),
    ({"WholeNodes": "maybe"}, (), "WholeNodes must be true or false"),
    ({"StageCmd": 2}, (), "StageCmd must be true or false"),
    ({"Cmd": "/bin/ec\nho"}, (), "Cmd contains a control character"),
    ({"Out": "out\tfile"}, (), "Out contains a control character"),
    ({"TransferInput": "a,b\x01"}, (), "TransferInput contains a control character"),
    ({"KubernetesImage": "bad image"}, (), "KubernetesImage must be an image reference"),
    ({"KubernetesImage": 7}, (), "KubernetesImage must be a string"),
    ({"CERequirements": expr("k8s_image == 5")}, (), "k8s_image (in CERequirements) must be"),
    ({"KubernetesNamespace": "Bad_NS"}, (), "KubernetesNamespace must be a Kubernetes namespace"),
    ({"Arguments": "a 'b"}, (), "Arguments has an unbalanced single quote"),
    ({"Environment": "NOEQUALS"}, (), "Environment entry 'NOEQUALS' has no '='"),
    ({"Environment": "..hidden=x"}, (),
     "'..hidden' is not valid for Kubernetes: must not start with '..'."),
    ({"Environment": "'TAB	NAME=x'"}, (), "'TAB\\tNAME' is not valid for Kubernetes: a valid "
     "environment variable name must consist only of printable ASCII characters other than '='"),
    ({"Env": "A=1;B"}, (), "Env entry 'B' has no '='"),
]


@pytest.mark.parametrize(("attributes", "drop", "message"), REFUSALS)
def test_refusals_say_what_is_wrong(attributes: dict[str, Any], drop: tuple[str, ...],
                                    message: str) -> None:
    with pytest.raises(JobAdError) as caught:
        parse_submit_ad(submit_ad(attributes, drop))
    assert message in str(caught.value)


@pytest.mark.parametrize(("text", "message"), [
    ("", "not a ClassAd in new syntax"),
    ("garbage", "not a ClassAd in new syntax"),
    ("Cmd = \"/bin/true\"\nIwd = \"/\"", "not a ClassAd in new syntax"),  # old syntax
    ("[ Cmd = ", "could not be parsed"),
    ("[ Cmd = \"unterminated ]", "could not be parsed"),
    ("[ ]", "could not be parsed"),
    ("[ Cmd = \"/bin/true\"; \x00 ]", "NUL character"),
    ("[ Cmd = \"\ud800\" ]", "could not be"),
])
def test_unreadable_ads(text: str, message: str) -> None:
    with pytest.raises(JobAdError, match=message):
        parse_submit_ad(text)


def test_messages_never_echo_environment_values() -> None:
    with pytest.raises(JobAdError) as caught:
        parse_submit_ad(submit_ad({"Environment": "TOKEN=abc =s3cr3t-value"}))
    assert "s3cr3t" not in str(caught.value)
