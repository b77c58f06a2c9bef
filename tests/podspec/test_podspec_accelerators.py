"""GPUMode and MICNumber: the admin's knobs (KGAHP_GPU_MODES, KGAHP_MIC_RESOURCE, KGAHP_MAX_MICS),
and the pod `kgahp render` prints for such a job, checked by the pod policy guard."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
import yaml
from podspec_support import assert_valid_pod, job_container, plain_templates, settings

from kgahp.config import GpuMode
from kgahp.errors import ConfigError
from kgahp.podspec import verify_pod
from kgahp.render import render_text

AD = ('[ Cmd = "/bin/echo"; Iwd = "/home/u"; KubernetesImage = "busybox:1.36"; '
      'JobDirectory = "home_bl_127.0.0.1_19618_gridtest_vm_1.0_1795270358"; GPUNumber = 2; '
      'CERequirements = GPUMode == "Shared" && MICNumber == 1 ]')
KNOBS = {
    "GPU_MODES": "shared:nvidia.com/gpu.shared:nvidia.com/gpu.sharing-strategy=time-slicing,"
                 "exclusive_process:nvidia.com/gpu",
    "MIC_RESOURCE": "intel.com/mic",
}

# (KGAHP_GPU_MODES text, the modes kgahp reads from it)
MODE_ROWS: list[tuple[str, tuple[GpuMode, ...]]] = [
    ("", ()),
    ("shared:nvidia.com/gpu.shared", (GpuMode("shared", "nvidia.com/gpu.shared"),)),
    ("shared:a.com/g exclusive_process:b.com/g",
     (GpuMode("shared", "a.com/g"), GpuMode("exclusive_process", "b.com/g"))),
    (" shared:a.com/g ,  exclusive:b.com/g ",
     (GpuMode("shared", "a.com/g"), GpuMode("exclusive", "b.com/g"))),
    ("Shared:a.com/g", (GpuMode("shared", "a.com/g"),)),
    ("default", (GpuMode("default"),)),
    ("default:", (GpuMode("default"),)),
    ("mps::nvidia.com/gpu.sharing-strategy=mps",
     (GpuMode("mps", "", (("nvidia.com/gpu.sharing-strategy", "mps"),)),)),
    ("mig:nvidia.com/mig-1g.5gb:a.io/x=1:zone=",
     (GpuMode("mig", "nvidia.com/mig-1g.5gb", (("a.io/x", "1"), ("zone", ""))),)),
]


@pytest.mark.parametrize(("text", "modes"), MODE_ROWS, ids=[r[0] or "empty" for r in MODE_ROWS])
def test_gpu_modes_knob(text: str, modes: tuple[GpuMode, ...]) -> None:
    assert settings(GPU_MODES=text).pod.gpu_modes == modes


# (knobs, words the ConfigError must contain)
KNOB_REFUSALS: list[tuple[dict[str, str], str]] = [
    ({"GPU_MODES": "shared:cpu"}, "KGAHP_GPU_MODES = 'shared:cpu' is not valid: 'cpu' is not an "
     "extended resource name"),
    ({"GPU_MODES": "shared:memory"}, "'memory' is not an extended resource name"),
    ({"GPU_MODES": "x:kubernetes.io/batteries"}, "in the kubernetes.io domain"),
    ({"GPU_MODES": "x:foo.kubernetes.io/gpu"}, "in the kubernetes.io domain"),
    ({"GPU_MODES": "x:Bad_Domain/gpu"}, "not an extended resource name"),
    ({"GPU_MODES": "shared:a.com/g shared:b.com/g"}, "mode 'shared' is listed twice"),
    ({"GPU_MODES": "Shared:a.com/g shared:b.com/g"}, "mode 'shared' is listed twice"),
    ({"GPU_MODES": ":a.com/g"}, "the mode must be a short name"),
    ({"GPU_MODES": "sh$ared:a.com/g"}, "the mode must be a short name"),
    ({"GPU_MODES": "x:a.com/g:nolabel"}, "'nolabel' is not a node selector LABEL=VALUE"),
    ({"GPU_MODES": "x:a.com/g:k=bad!"}, "'k=bad!' is not a node selector"),
    ({"GPU_MODES": "x:a.com/g:k=" + "v" * 64}, "is not a node selector"),
    ({"GPU_MODES": "x:a.com/g:-k=v"}, "'-k=v' is not a node selector"),
    ({"MIC_RESOURCE": "mic"}, "KGAHP_MIC_RESOURCE = 'mic' is not valid"),
    ({"MIC_RESOURCE": "cpu"}, "KGAHP_MIC_RESOURCE = 'cpu' is not valid"),
    ({"MIC_RESOURCE": "nvidia.com/gpu"}, "KGAHP_MIC_RESOURCE = 'nvidia.com/gpu' is also a GPU "
     "resource"),
    ({"MIC_RESOURCE": "a.com/g", "GPU_MODES": "shared:a.com/g"}, "is also a GPU resource"),
    ({"MAX_MICS": "-1"}, "KGAHP_MAX_MICS = '-1' must not be negative"),
    ({"MAX_MICS": "many"}, "KGAHP_MAX_MICS = 'many' is not valid"),
]


@pytest.mark.parametrize(("knobs", "message"), KNOB_REFUSALS,
                         ids=[" ".join(f"{k}={v}" for k, v in r[0].items()) for r in KNOB_REFUSALS])
def test_bad_accelerator_knobs_are_config_errors(knobs: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**knobs)
    assert message in str(caught.value)


def test_the_rendered_pod_of_a_gpu_mode_and_mic_job_passes_the_policy_guard() -> None:
    site = settings(**KNOBS)
    templates = plain_templates()
    pod = render_text(AD, site, templates)
    assert_valid_pod(pod)
    verify_pod(pod, templates, site)
    resources = job_container(pod)["resources"]
    for kind in ("requests", "limits"):
        assert resources[kind]["nvidia.com/gpu.shared"] == "2"
        assert resources[kind]["intel.com/mic"] == "1"
        assert "nvidia.com/gpu" not in resources[kind]
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.sharing-strategy": "time-slicing"}


def _render(stdin: str, **knobs: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_CONDOR_KGAHP_")}
    env.update({f"_CONDOR_KGAHP_{k}": v for k, v in knobs.items()})
    code = "import sys; from kgahp.render import main; raise SystemExit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "-"], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60)


def test_kgahp_render_shows_the_mode_resource_and_the_mic_cards() -> None:
    result = _render(AD, **KNOBS)
    assert result.returncode == 0, result.stderr
    pod: Any = next(yaml.safe_load_all(result.stdout))   # the pod, then its Secrets
    requests = job_container(pod)["resources"]["requests"]
    assert (requests["nvidia.com/gpu.shared"], requests["intel.com/mic"]) == ("2", "1")


@pytest.mark.parametrize(("knobs", "message"), [
    ({}, "kgahp render: GPUMode is not allowed: this site offers no GPU modes "
         "(KGAHP_GPU_MODES is empty) (asked for 'Shared'; leave GPUMode unset)"),
    ({"GPU_MODES": "exclusive_process:nvidia.com/gpu"},
     "kgahp render: GPUMode is not allowed: 'Shared' is not a GPU mode this site maps in "
     "KGAHP_GPU_MODES (choose one of exclusive_process, or leave GPUMode unset)"),
    ({"GPU_MODES": KNOBS["GPU_MODES"]},
     "kgahp render: MICNumber is not allowed: this site offers no MIC (Xeon Phi) resource "
     "(KGAHP_MIC_RESOURCE is empty) (asked for 1)"),
])
def test_kgahp_render_refuses_in_one_sentence(knobs: dict[str, str], message: str) -> None:
    result = _render(AD, **knobs)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == message
