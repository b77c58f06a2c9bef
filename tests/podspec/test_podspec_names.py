from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgahp.podspec.names import (
    BASE_NAME_MAX,
    JobDirInfo,
    job_base_name,
    label_value,
    parse_job_directory,
    pod_name,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@pytest.mark.parametrize(("job_directory", "expected"), [
    ("home_bl_127.0.0.1_19618_gridtest_vm_1.0_1795270358",
     JobDirInfo("127.0.0.1_19618", "gridtest_vm", "1.0", 1795270358)),
    ("home_bl_ce.example.org_9619_ce.example.org_1234.0_1767225600",
     JobDirInfo("ce.example.org_9619", "ce.example.org", "1234.0", 1767225600)),
    ("home_bl_cm.example.org_schedd_vm.example.org_7.12_1700000000",
     JobDirInfo("cm.example.org", "schedd_vm.example.org", "7.12", 1700000000)),
    ("", JobDirInfo()),
    ("home_bl_", JobDirInfo()),
    ("something else entirely", JobDirInfo()),
    ("home_bl_host_9618_schedd_notanumber_1", JobDirInfo()),
])
def test_parse_job_directory(job_directory: str, expected: JobDirInfo) -> None:
    assert parse_job_directory(job_directory) == expected


@pytest.mark.parametrize(("job_directory", "prefix", "readable"), [
    ("home_bl_ce.example.org_9619_ce.example.org_1234.0_1767225600", "kg", "kg-ce-1234-0-"),
    ("home_bl_127.0.0.1_19618_gridtest_vm_1.0_1795270358", "kg", "kg-gridtest-vm-1-0-"),
    ("home_bl_CE.Example.ORG_9619_CE.Example.ORG_5.3_1767225600", "KG", "kg-ce-5-3-"),
    ("home_bl_ce.example.org_9619_ce.example.org_1234.0_1767225600", "--My_Site--", "my-site-ce-"),
    ("home_bl_ce.example.org_9619_ce.example.org_1234.0_1767225600", "!!!", "kg-ce-1234-0-"),
])
def test_base_name_is_readable(job_directory: str, prefix: str, readable: str) -> None:
    name = job_base_name(job_directory, prefix)
    assert name.startswith(readable)
    assert re.fullmatch(r"[0-9a-f]{8}", name.rsplit("-", 1)[1])


def test_base_name_keeps_cluster_proc_when_the_schedd_name_is_long() -> None:
    long_schedd = "s" * 100
    name = job_base_name(f"home_bl_cm_9618_{long_schedd}_123456.789_1767225600", "prefix")
    assert len(name) <= BASE_NAME_MAX
    assert "-123456-789-" in name


def test_base_names_differ_when_only_replaced_characters_differ() -> None:
    a = job_base_name("home_bl_cm_9618_a@b_1.0_1", "kg")
    b = job_base_name("home_bl_cm_9618_a#b_1.0_1", "kg")
    assert a != b


def test_pod_name_appends_the_attempt() -> None:
    base = job_base_name("home_bl_cm_9618_s_1.0_1", "kg")
    assert pod_name(base, 3) == f"{base}-3"
    assert len(pod_name("x" * BASE_NAME_MAX, 999999)) == 63


@settings(max_examples=300, deadline=None)
@given(job_directory=st.text(), prefix=st.text(max_size=80))
def test_any_job_directory_gives_a_valid_stable_base_name(job_directory: str, prefix: str) -> None:
    name = job_base_name(job_directory, prefix)
    assert len(name) <= BASE_NAME_MAX
    assert DNS_LABEL.fullmatch(name), name
    assert "--" not in name
    assert job_base_name(job_directory, prefix) == name
    assert DNS_LABEL.fullmatch(pod_name(name, 999999))


@settings(max_examples=200, deadline=None)
@given(st.from_regex(
    r"home_bl_[a-z0-9.]{1,30}_[0-9]{1,5}_[A-Za-z0-9_.-]{1,40}_[0-9]{1,7}\.[0-9]{1,4}_[0-9]{10}",
    fullmatch=True))
def test_gridmanager_shaped_directories_parse(job_directory: str) -> None:
    info = parse_job_directory(job_directory)
    assert info.cluster_proc is not None and info.submit_time is not None
    head, cluster_proc, submit_time = job_directory.rsplit("_", 2)
    assert (info.cluster_proc, info.submit_time) == (cluster_proc, int(submit_time))
    assert head == f"home_bl_{info.collector}_{info.schedd}"
    name = job_base_name(job_directory, "kg")
    assert info.cluster_proc.replace(".", "-") in name


@pytest.mark.parametrize("text", ["alice", "my_project.v2", "A-1", "", "x" * 63])
def test_valid_label_values_are_kept(text: str) -> None:
    assert label_value(text) == text


@pytest.mark.parametrize("text", ["bad value!", "-lead", "trail.", "x" * 64, "ünïcode", "a/b"])
def test_invalid_label_values_are_sanitised_with_a_hash(text: str) -> None:
    value = label_value(text)
    assert value != text
    assert LABEL_VALUE.fullmatch(value) and len(value) <= 63
    assert re.search(r"[0-9a-f]{8}$", value)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_string_gives_a_valid_label_value(text: str) -> None:
    value = label_value(text)
    assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), value
    assert label_value(text) == value
