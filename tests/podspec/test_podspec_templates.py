from __future__ import annotations

from pathlib import Path

import pytest

from kgahp.config import PodSettings
from kgahp.errors import ConfigError
from kgahp.podspec import load_templates
from kgahp.podspec.templates import MAIN_CONTAINER, QueueConfig


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_no_files_give_a_minimal_pod_and_no_queues() -> None:
    templates = load_templates(PodSettings())
    assert templates.base["kind"] == "Pod"
    assert templates.base["spec"]["containers"] == [{"name": MAIN_CONTAINER}]
    assert templates.queues == {}


def test_an_empty_template_file_is_the_minimal_pod(tmp_path: Path) -> None:
    templates = load_templates(PodSettings(pod_template=write(tmp_path, "t.yaml", "")))
    assert templates.base["spec"]["containers"] == [{"name": MAIN_CONTAINER}]


def test_a_template_without_a_job_container_gets_one_first(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", "spec:\n  containers:\n  - name: side\n    image: b:1\n")
    base = load_templates(PodSettings(pod_template=path)).base
    assert [c["name"] for c in base["spec"]["containers"]] == ["job", "side"]
    assert base["apiVersion"] == "v1"


def test_queue_config_inline_and_file_templates(tmp_path: Path) -> None:
    write(tmp_path, "gpu.yaml", "spec:\n  tolerations:\n  - key: gpu\n    operator: Exists\n")
    path = write(tmp_path, "queues.yaml", """
queues:
  gpu:
    template: gpu.yaml
    priorityClassName: high.priority
  short:
    template: {spec: {activeDeadlineSeconds: 60}}
    namespace: short-jobs
    kueueQueue: short_q
  plain:
""")
    queues = load_templates(PodSettings(queue_config=path)).queues
    assert queues == {
        "gpu": QueueConfig(template={"spec": {"tolerations": [{"key": "gpu",
                                                               "operator": "Exists"}]}},
                           priority_class="high.priority"),
        "short": QueueConfig(template={"spec": {"activeDeadlineSeconds": 60}},
                             namespace="short-jobs", kueue_queue="short_q"),
        "plain": QueueConfig(),
    }


@pytest.mark.parametrize(("template", "problem"), [
    ("- a list\n", "mapping"),
    ("kind: Deployment\n", "expected Pod"),
    ("spec: [1]\n", "spec must be a mapping"),
    ("containers: []\n", "unexpected top-level keys containers"),
    ("spec:\n  containers:\n  - image: x\n", "named containers"),
    ("spec:\n  restartPolicy: Always\n", "restartPolicy must be Never"),
    ("spec: {containers: [\n", "not valid YAML at line"),
])
def test_bad_pod_templates_name_the_file_and_problem(tmp_path: Path, template: str,
                                                     problem: str) -> None:
    path = write(tmp_path, "pod.yaml", template)
    with pytest.raises(ConfigError) as caught:
        load_templates(PodSettings(pod_template=path))
    assert problem in str(caught.value)
    assert "pod.yaml" in str(caught.value)


@pytest.mark.parametrize(("config", "problem"), [
    ("queues: [a, b]\n", "'queues' must map"),
    ("other: 1\n", "one key 'queues'"),
    ("queues:\n  q: 5\n", "queue 'q' must be a mapping"),
    ("queues:\n  q: {priority: x}\n", "unknown keys priority"),
    ("queues:\n  q: {namespace: Bad_NS}\n", "not a valid namespace"),
    ("queues:\n  q: {priorityClassName: 'no spaces'}\n", "priorityClassName"),
    ("queues:\n  q: {kueueQueue: 'bad value!'}\n", "kueueQueue"),
    ("queues:\n  q: {kueuePriorityClass: urgent}\n", "kueuePriorityClass needs kueueQueue"),
    ("queues:\n  q: {kueueQueue: lq, kueuePriorityClass: 'not ok!'}\n", "kueuePriorityClass"),
    ("queues:\n  q: {namespace: 7}\n", "namespace must be a string"),
    ("queues:\n  q: {template: missing.yaml}\n", "cannot be read"),
    ("queues:\n  q: {template: {spec: {containers: [{}]}}}\n", "named containers"),
])
def test_bad_queue_configs_name_the_file_and_problem(tmp_path: Path, config: str,
                                                     problem: str) -> None:
    path = write(tmp_path, "queues.yaml", config)
    with pytest.raises(ConfigError) as caught:
        load_templates(PodSettings(queue_config=path))
    assert problem in str(caught.value)
    assert "queues.yaml" in str(caught.value)


def test_a_missing_template_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"KGAHP_POD_TEMPLATE .*nope\.yaml cannot be read"):
        load_templates(PodSettings(pod_template=str(tmp_path / "nope.yaml")))
