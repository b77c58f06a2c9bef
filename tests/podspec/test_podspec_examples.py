"""Every file under examples/ is exercised: templates load, and what they describe renders."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any

import pytest
from podspec_support import EXAMPLES, assert_valid_pod, job_container, request

from kgahp.config import PodSettings, Settings, settings_from_mapping
from kgahp.jobad import parse_submit_ad
from kgahp.podspec import Templates, build_pod, load_templates
from kgahp.podspec.names import LABEL_KUEUE_QUEUE

TEMPLATES = EXAMPLES / "pod-templates"
QUEUES = EXAMPLES / "queues.yaml"
CE_CONF = EXAMPLES / "ce" / "50-kubernetes-route.conf"


def ce_settings() -> Settings:
    """The knobs the CE example configures, with its /etc/kgahp paths pointed at examples/."""
    knobs = {}
    for line in CE_CONF.read_text().splitlines():
        match = re.match(r"^KGAHP_(\w+)\s*=\s*(.*)$", line)
        if match:
            knobs[match[1]] = match[2].replace("/etc/kgahp", str(EXAMPLES))
    assert {"POD_TEMPLATE", "QUEUE_CONFIG", "ENVIRONMENT"} <= set(knobs)
    return settings_from_mapping(knobs, user="osgpilot")


def example_templates() -> Templates:
    return load_templates(PodSettings(pod_template=str(TEMPLATES / "payload.yaml"),
                                      queue_config=str(QUEUES)))


def route_ad(text: str) -> str:
    """The submit ad the gridmanager sends for a pilot routed by the example route (§7.2)."""
    body = text.split("@=jrt", 1)[1].split("@jrt", 1)[0]
    macros: dict[str, str] = {}
    sets: dict[str, str] = {}
    for raw in body.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("SET "):
            name, _, value = line[4:].partition("=")
            sets[name.strip()] = value.strip()
        else:
            name, _, value = line.partition("=")
            macros[name.strip()] = value.strip()
    ad = {
        "Cmd": '"/var/lib/condor-ce/spool/1/0/cluster1.proc0.subproc0/glidein_startup.sh"',
        "Iwd": '"/var/lib/condor-ce/spool/1/0/cluster1.proc0.subproc0"',
        "JobDirectory": '"home_bl_ce.example.org_9619_ce.example.org_1.0_1767225600"',
        "Queue": f'"{macros["default_queue"]}"',
        "BatchRuntime": str(int(macros["default_maxWallTime"]) * 60),
        "SMPGranularity": macros["default_xcount"],
        "NodeNumber": macros["default_xcount"],
        "RequestMemory": macros["default_maxMemory"],
    }
    ce_names = [n for n in sets.pop("default_CERequirements").strip('"').split(",") if n]
    ce_requirements = [f"{n} == {sets.pop(n)}" for n in ce_names] + ["CondorCE == 1"]
    ad["CERequirements"] = " && ".join(ce_requirements)
    for name, value in sets.items():
        ad[name[len("remote_"):] if name.startswith("remote_") else name] = value
    return "[ " + "; ".join(f"{k} = {v}" for k, v in ad.items()) + " ]"


def submit_file_ad(text: str) -> str:
    """The submit ad for an access-point submit file (§4.2), for the commands it uses."""
    commands: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == "queue":
            continue
        name, _, value = line.partition("=")
        commands[name.strip()] = value.strip()
    iwd = "/home/alice/analysis"
    plain = {"arguments": "Arguments", "environment": "Environment"}
    ad: dict[str, str] = {
        "Cmd": f'"{iwd}/{commands["executable"]}"', "Iwd": f'"{iwd}"',
        "JobDirectory": '"home_bl_ap.example.org_9618_alice_ap.example.org_42.0_1767225600"',
        "TransferInput": f'"{commands["transfer_input_files"]}"',
        "RequestMemory": commands["request_memory"], "GPUNumber": commands["request_gpus"],
        "Queue": f'"{commands["batch_queue"]}"', "BatchProject": f'"{commands["batch_project"]}"',
        "BatchRuntime": commands["batch_runtime"],
    }
    for command, attribute in plain.items():
        ad[attribute] = commands[command]           # already a quoted V2 string
    for name, value in commands.items():
        if name.lower().startswith("+remote_"):
            ad[name[len("+remote_"):]] = value
    return "[ " + "; ".join(f"{k} = {v}" for k, v in ad.items()) + " ]"


# --- templates

def test_every_example_template_loads_as_base_and_renders() -> None:
    for path in sorted(TEMPLATES.glob("*.yaml")):
        templates = load_templates(PodSettings(pod_template=str(path)))
        settings = settings_from_mapping({"DEFAULT_IMAGE": "busybox:1.36"}, user="u")
        assert_valid_pod(build_pod(request(), settings, templates, attempt=1))


@pytest.mark.parametrize("queue", ["payload", "gpu", "pilots", "short", None])
def test_every_example_queue_renders_a_valid_pod(queue: str | None) -> None:
    templates = example_templates()
    settings = settings_from_mapping({"DEFAULT_IMAGE": "busybox:1.36",
                                      "ALLOWED_NAMESPACES": "osg-pilots"}, user="u")
    pod = build_pod(request(queue=queue), settings, templates, attempt=1)
    assert_valid_pod(pod)
    mounts = [m["mountPath"] for m in job_container(pod)["volumeMounts"]]
    assert mounts[0] == "/scratch"     # the base template's mount survives every overlay


def test_example_queues_match_their_files() -> None:
    queues = example_templates().queues
    assert set(queues) == {"payload", "gpu", "pilots", "short"}
    assert queues["pilots"].namespace == "osg-pilots"
    assert queues["pilots"].kueue_queue == "pilots-local"
    assert queues["gpu"].template is not None
    assert queues["gpu"].template["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"


# --- the CE route, with the CE's knobs

def test_ce_route_renders_a_pilot_pod() -> None:
    ad = route_ad(CE_CONF.read_text())
    settings = ce_settings()
    pod = build_pod(parse_submit_ad(ad), settings, load_templates(settings.pod), attempt=1)
    assert_valid_pod(pod)
    container = job_container(pod)
    spec = pod["spec"]
    assert pod["metadata"]["namespace"] == "osg-pilots"
    assert pod["metadata"]["labels"][LABEL_KUEUE_QUEUE] == "pilots-local"
    assert spec["priorityClassName"] == "pilots"
    assert spec["activeDeadlineSeconds"] == 2880 * 60
    assert container["image"] == "registry.example.org/osg/pilot:latest"
    assert container["resources"]["requests"] == {"cpu": "8", "memory": "16000Mi"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CONDOR_HOST"] == "cm.example.org:9618"
    assert env["GLIDEIN_Site"] == "EXAMPLE"
    assert {"name": "pilot-token", "mountPath": "/etc/condor/tokens.d", "readOnly": True} in \
        container["volumeMounts"]
    assert spec["securityContext"]["runAsNonRoot"] is True     # the pilot template's runAsUser
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_ce_knobs_refuse_images_outside_the_registry() -> None:
    from kgahp.errors import PolicyError

    ad = route_ad(CE_CONF.read_text()).replace(
        "registry.example.org/osg/pilot:latest", "docker.io/someone/else:1")
    settings = ce_settings()
    with pytest.raises(PolicyError, match="KubernetesImage"):
        build_pod(parse_submit_ad(ad), settings, load_templates(settings.pod), attempt=1)


# --- the access-point submit file

def test_access_point_submit_file_renders() -> None:
    ad = submit_file_ad((EXAMPLES / "submit" / "ap-job.sub").read_text())
    settings = settings_from_mapping({"POD_TEMPLATE": str(TEMPLATES / "payload.yaml"),
                                      "QUEUE_CONFIG": str(QUEUES)}, user="alice")
    pod = build_pod(parse_submit_ad(ad), settings, load_templates(settings.pod), attempt=1)
    assert_valid_pod(pod)
    container = job_container(pod)
    assert container["image"] == "python:3.12"
    assert container["command"] == ["/home/alice/analysis/analyze.sh"]
    assert container["args"] == ["--input", "data.csv", "--label", "two words",
                                 "--pattern", "*.csv"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["MODE"], env["ANSWER"], env["TMPDIR"]) == ("fast", "42", "/scratch")
    assert container["resources"]["requests"] == {
        "cpu": "2", "memory": "4096Mi", "nvidia.com/gpu": "1"}
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}
    assert pod["spec"]["priorityClassName"] == "batch-gpu"
    assert pod["spec"]["activeDeadlineSeconds"] == 3600
    assert [t["key"] for t in pod["spec"]["tolerations"]] == ["nvidia.com/gpu"]


# --- the GlideinWMS entry

def entry_xml() -> Any:
    text = (EXAMPLES / "glideinwms" / "entry-attrs.md").read_text()
    block = re.search(r"```xml\n(.*?)```", text, re.S)
    assert block, "the entry document has an xml block"
    return ET.fromstring(block.group(1))


def test_glideinwms_entry_renders_through_the_ce_route() -> None:
    entry = entry_xml()
    submit = {a.get("name"): a.get("value") for a in entry.iter("submit_attr")}
    attrs = {a.get("name"): a.get("value") for a in entry.iter("attr")}
    assert submit["+xcount"] == attrs["GLIDEIN_CPUS"]
    assert int(submit["+maxMemory"]) == int(attrs["GLIDEIN_MaxMemMBs"])
    assert int(submit["+maxWallTime"]) * 60 == int(attrs["GLIDEIN_Max_Walltime"])
    queue = (submit["+queue"] or "").strip('"')
    settings = ce_settings()
    templates = load_templates(settings.pod)
    assert queue in templates.queues
    # what the CE's transforms make of these attributes (docs/protocol.md)
    req = replace(request(), cpus=float(submit["+xcount"] or 0), cpus_explicit=True,
                  memory_mib=int(submit["+maxMemory"] or 0),
                  runtime_seconds=int(submit["+maxWallTime"] or 0) * 60, queue=queue)
    pod = build_pod(req, settings, templates, attempt=1)
    assert_valid_pod(pod)
    assert job_container(pod)["resources"]["requests"] == {"cpu": "8", "memory": "16000Mi"}
    assert pod["spec"]["activeDeadlineSeconds"] == int(attrs["GLIDEIN_Max_Walltime"])


def test_example_pods_pass_the_api_servers_validation(sim: Any) -> None:
    """Every example queue's pod, sent with dryRun=All: the API server's verdict, not ours,
    in a namespace that enforces Pod Security "restricted", once the PriorityClasses the
    examples name exist (Priority admission refuses a pod naming a missing one)."""
    from kubernetes import client

    api = client.CoreV1Api(sim.api_client())
    api.create_namespace({"metadata": {"name": "osg-pilots", "labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}})
    settings = settings_from_mapping({"DEFAULT_IMAGE": "busybox:1.36",
                                      "ALLOWED_NAMESPACES": "osg-pilots",
                                      "LIMIT_POLICY": "factor", "LIMIT_FACTOR": "1.5"}, user="u")
    templates = example_templates()
    scheduling = client.SchedulingV1Api(sim.api_client())
    for name in sorted({q.priority_class for q in templates.queues.values() if q.priority_class}):
        scheduling.create_priority_class({"metadata": {"name": name}, "value": 1000})
    for queue in [None, *sorted(templates.queues)]:
        pod = build_pod(request(queue=queue, gpus=1, disk_kib=1024, runtime_seconds=60,
                                arguments=("a b", "$(x)"), environment=(("A", "1"),)),
                        settings, templates, attempt=1)
        created = api.create_namespaced_pod(pod["metadata"]["namespace"], pod, dry_run="All")
        assert created.metadata.name == pod["metadata"]["name"]
    assert api.list_namespaced_pod("osg-pilots").items == []


def transcript_ads() -> list[str]:
    from podspec_support import DATA

    transcript = DATA / "transcripts" / "gridmanager-25.0.13.txt"
    ads = []
    for line in transcript.read_text().splitlines():
        match = re.search(r"GM->GAHP BLAH_JOB_SUBMIT \d+ (.*)$", line)
        if match:
            ads.append(re.sub(r"\\(.)", r"\1", match.group(1)))   # undo the GAHP escaping
    return ads


def test_every_ad_a_real_gridmanager_sent_renders() -> None:
    ads = transcript_ads()
    assert len(ads) >= 5
    settings = settings_from_mapping({"DEFAULT_IMAGE": "busybox:1.36"}, user="gridtest")
    # no queue config: the test pool's "myqueue" is then only a label
    templates = load_templates(PodSettings(pod_template=str(TEMPLATES / "payload.yaml")))
    names = set()
    for ad in ads:
        req = parse_submit_ad(ad)
        pod = build_pod(req, settings, templates, attempt=1)
        assert_valid_pod(pod)
        names.add((req.job_directory, pod["metadata"]["name"]))
    # one pod name per JobDirectory, and different JobDirectories never share one
    assert len({n for _, n in names}) == len({d for d, _ in names})
