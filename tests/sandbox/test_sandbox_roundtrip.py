"""Real execution of the decorated pod on this machine: inputs staged, payload run, outputs back."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sandbox_podemu import PodRun, run_init, run_pod, start_main

from kgahp.config import TransferSettings
from kgahp.errors import TransferError
from kgahp.model import JobRequest
from kgahp.sandbox import (
    cpu_usage,
    decorate_pod,
    extract_outputs,
    gather_inputs,
    input_secret_manifest,
)


def base_pod(req: JobRequest) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kg-test"},
            "spec": {"restartPolicy": "Never", "containers": [
                {"name": "job", "image": "debian", "command": [req.cmd],
                 "args": list(req.arguments)}]}}


class Site:
    """A submit host's Iwd plus a pod's local stand-in, under one temp directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.iwd = root / "iwd"
        self.iwd.mkdir()
        self.transfer = TransferSettings(sandbox_path=str(root / "pod" / "sandbox"))

    def script(self, name: str, body: str) -> str:
        path = self.iwd / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
        return str(path)

    def request(self, cmd: str, **kw: object) -> JobRequest:
        base: dict = {"job_directory": "home_bl_test", "cmd": cmd, "iwd": str(self.iwd)}
        base.update(kw)
        return JobRequest(**base)

    def pod_for(self, req: JobRequest, transfer: TransferSettings | None = None
                ) -> tuple[dict, dict | None]:
        transfer = transfer or self.transfer
        bundle = gather_inputs(req, transfer)
        pod = base_pod(req)
        decorate_pod(pod, req, transfer, inputs=bundle, input_secret="kg-test-in")
        secret = (input_secret_manifest("kg-test-in", "ns", bundle, {"app": "kgahp"})
                  if bundle else None)
        return pod, secret

    def run(self, req: JobRequest, transfer: TransferSettings | None = None) -> PodRun:
        pod, secret = self.pod_for(req, transfer)
        return run_pod(pod, secret, self.root / "pod" / "input")

    def files(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.iwd)): p.read_bytes()
                for p in sorted(self.iwd.rglob("*")) if p.is_file()}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def test_job_reads_inputs_and_writes_distinct_streams_and_outputs(site: Site) -> None:
    cmd = site.script("job.sh", 'cat data.txt; echo "to err" >&2; read line; '
                                'echo "got $line" > result.txt; exit 0\n')
    (site.iwd / "data.txt").write_bytes(b"input payload\n")
    (site.iwd / "in.txt").write_bytes(b"from stdin\n")
    req = site.request(cmd, stdin="in.txt", stdout="job.out", stderr="job.err",
                       transfer_input=("data.txt",), transfer_output=("result.txt",))
    before = site.files()
    run = site.run(req)
    assert run.exit_code == 0
    written = extract_outputs(run.log, req, site.transfer)
    assert sorted(written) == sorted(str(site.iwd / n) for n in ("job.out", "job.err",
                                                                   "result.txt"))
    after = site.files()
    assert after["job.out"] == b"input payload\n"
    assert after["job.err"] == b"to err\n"
    assert after["result.txt"] == b"got from stdin\n"
    assert {k: after[k] for k in before} == before       # inputs untouched
    assert not [n for n in after if ".kgahp-partial" in n]


def test_binary_input_and_output_round_trip_exactly(site: Site) -> None:
    blob = bytes(range(256)) * 64 + b"\x00\xff"
    (site.iwd / "blob.bin").write_bytes(blob)
    cmd = site.script("job.sh", "cat blob.bin blob.bin > twice.bin\n")
    req = site.request(cmd, transfer_input=("blob.bin",), transfer_output=("twice.bin",))
    run = site.run(req)
    extract_outputs(run.log, req, site.transfer)
    assert (site.iwd / "twice.bin").read_bytes() == blob + blob


def test_directory_inputs_keep_structure_and_executable_bit(site: Site) -> None:
    tree = site.iwd / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("A")
    (tree / "sub" / "tool.sh").write_text("#!/bin/sh\necho tool ran\n")
    (tree / "sub" / "tool.sh").chmod(0o755)
    flat = site.iwd / "flat"
    flat.mkdir()
    (flat / "f.txt").write_text("F")
    cmd = site.script("job.sh", "cat tree/a.txt f.txt; ./tree/sub/tool.sh; "
                                "for f in tree/sub/tool.sh tree/a.txt; do "
                                "ls -l $f | cut -c1-10 >&2; done\n")
    req = site.request(cmd, stdout="o", stderr="e", transfer_input=("tree", "flat/"),
                       transfer_output=())
    run = site.run(req)
    assert run.exit_code == 0
    extract_outputs(run.log, req, site.transfer)
    assert (site.iwd / "o").read_text() == "AFtool ran\n"
    assert (site.iwd / "e").read_text().split() == ["-rwxr-xr-x", "-rw-r--r--"]


def test_output_directory_and_remaps(site: Site) -> None:
    cmd = site.script("job.sh", "mkdir -p res/deep; echo r > res/deep/r.txt; echo x > x.txt; "
                                "echo y > y.txt\n")
    (site.iwd / "sub").mkdir()
    req = site.request(cmd, transfer_output=("res", "x.txt", "y.txt"),
                       output_remaps=(("x.txt", "sub/renamed.txt"),
                                      ("y.txt", str(site.iwd / "sub" / "abs.txt"))))
    run = site.run(req)
    extract_outputs(run.log, req, site.transfer)
    files = site.files()
    assert files["res/deep/r.txt"] == b"r\n"
    assert files["sub/renamed.txt"] == b"x\n"
    assert files["sub/abs.txt"] == b"y\n"
    assert "x.txt" not in files and "y.txt" not in files


def test_missing_output_is_named_and_nothing_is_written(site: Site) -> None:
    cmd = site.script("job.sh", "echo out; echo present > here.txt\n")
    req = site.request(cmd, stdout="job.out", transfer_output=("here.txt", "absent.dat"))
    run = site.run(req)
    with pytest.raises(TransferError, match=r"absent\.dat"):
        extract_outputs(run.log, req, site.transfer)
    assert sorted(site.files()) == ["job.sh"]


def test_default_outputs_are_new_or_modified_top_level_files(site: Site) -> None:
    (site.iwd / "same.txt").write_text("unchanged")
    (site.iwd / "edit.txt").write_text("old")
    cmd = site.script("job.sh", "echo new > new.txt; echo changed > edit.txt; "
                                "mkdir d; echo no > d/inner.txt; echo dot > .hidden\n")
    req = site.request(cmd, transfer_input=("same.txt", "edit.txt"))
    run = site.run(req)
    written = extract_outputs(run.log, req, site.transfer)
    names = sorted(os.path.relpath(p, site.iwd) for p in written)
    assert names == [".hidden", "edit.txt", "new.txt"]
    assert (site.iwd / "edit.txt").read_text() == "changed\n"


def test_oversized_input_names_size_limit_and_knob(site: Site) -> None:
    (site.iwd / "big.dat").write_bytes(b"x" * 5000)
    cmd = site.script("job.sh", "true\n")
    req = site.request(cmd, transfer_input=("big.dat",))
    transfer = replace(site.transfer, max_input_bytes=4000)
    total = 5000 + os.path.getsize(cmd)
    with pytest.raises(TransferError) as err:
        gather_inputs(req, transfer)
    assert f"{total} bytes" in str(err.value) and "4000 bytes" in str(err.value)
    assert "KGAHP_MAX_INPUT_BYTES" in str(err.value)


def test_oversized_output_names_size_limit_and_knob(site: Site) -> None:
    cmd = site.script("job.sh", "head -c 300000 /dev/urandom > noise.bin\n")
    req = site.request(cmd, transfer_output=("noise.bin",))
    transfer = replace(site.transfer, max_output_bytes=100000)
    run = site.run(req, transfer)
    assert run.exit_code == 0
    assert "KGAHP-OUTPUT-BEGIN" not in run.log
    with pytest.raises(TransferError) as err:
        extract_outputs(run.log, req, transfer)
    message = str(err.value)
    assert "100000 bytes" in message and "KGAHP_MAX_OUTPUT_BYTES" in message
    size = int(message.split("output sandbox of ")[1].split(" ")[0])
    assert size > 300000
    assert sorted(site.files()) == ["job.sh"]


def test_truncated_log_writes_nothing(site: Site) -> None:
    cmd = site.script("job.sh", "head -c 20000 /dev/urandom > r.bin; echo hi\n")
    req = site.request(cmd, stdout="job.out", transfer_output=("r.bin",))
    run = site.run(req)
    lines = run.log.splitlines()
    end = lines.index("KGAHP-OUTPUT-END")
    for cut in ("\n".join(lines[:end]), "\n".join(lines[: end // 2]), run.log[: len(run.log) // 3]):
        with pytest.raises(TransferError, match=r"truncated|no output sandbox"):
            extract_outputs(cut, req, site.transfer)
        assert sorted(site.files()) == ["job.sh"]
    extract_outputs(run.log, req, site.transfer)
    assert (site.iwd / "job.out").read_text() == "hi\n"


def test_hostile_remap_is_refused_before_anything_is_written(site: Site) -> None:
    cmd = site.script("job.sh", "echo x > x.txt; echo out\n")
    for dest in ("../../etc/x", "/etc/x", "../outside.txt"):
        req = site.request(cmd, stdout="job.out", transfer_output=("x.txt",),
                           output_remaps=(("x.txt", dest),))
        run = site.run(req)
        with pytest.raises(TransferError):
            extract_outputs(run.log, req, site.transfer)
        assert sorted(site.files()) == ["job.sh"]
    assert not (site.root / "outside.txt").exists()


def test_symlink_in_iwd_that_escapes_is_refused(site: Site) -> None:
    outside = site.root / "outside"
    outside.mkdir()
    (site.iwd / "link").symlink_to(outside)
    cmd = site.script("job.sh", "echo x > x.txt\n")
    req = site.request(cmd, transfer_output=("x.txt",), output_remaps=(("x.txt", "link/x.txt"),))
    run = site.run(req)
    with pytest.raises(TransferError, match="outside"):
        extract_outputs(run.log, req, site.transfer)
    assert list(outside.iterdir()) == []


def test_job_symlink_outputs_are_not_recreated(site: Site) -> None:
    cmd = site.script("job.sh", "mkdir d; ln -s /etc/passwd d/pw; echo ok > d/ok\n")
    req = site.request(cmd, transfer_output=("d",))
    run = site.run(req)
    extract_outputs(run.log, req, site.transfer)
    assert (site.iwd / "d" / "ok").read_text() == "ok\n"
    assert not os.path.lexists(site.iwd / "d" / "pw")


NASTY_ARGS = ["plain", "with space", "'single'", '"double"', "$(touch pwned)", "`id`", ";",
              "a; rm -rf /", "-e", "--", "*", "", "$HOME", "line\nbreak", "back\\slash", "ünï"]


def _args_job(site: Site, args: tuple[str, ...]) -> JobRequest:
    cmd = site.script("args.sh", 'for a in "$@"; do printf "%s\\0" "$a"; done\n')
    return site.request(cmd, arguments=args, stdout="args.out", transfer_output=())


def _decoded_args(site: Site) -> list[str]:
    raw = (site.iwd / "args.out").read_bytes()
    return [a.decode() for a in raw.split(b"\0")[:-1]]


def test_arguments_reach_the_payload_verbatim(site: Site) -> None:
    req = _args_job(site, tuple(NASTY_ARGS))
    run = site.run(req)
    assert run.exit_code == 0
    extract_outputs(run.log, req, site.transfer)
    assert _decoded_args(site) == NASTY_ARGS
    assert not (Path(site.transfer.sandbox_path) / "pwned").exists()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                        max_size=12), max_size=5))
def test_any_arguments_reach_the_payload_verbatim(tmp_path_factory: pytest.TempPathFactory,
                                                  args: list[str]) -> None:
    site = Site(tmp_path_factory.mktemp("args"))
    req = _args_job(site, tuple(args))
    extract_outputs(site.run(req).log, req, site.transfer)
    assert _decoded_args(site) == args


@pytest.mark.parametrize(("body", "expected"), [
    ("exit 0", 0), ("exit 3", 3), ("exit 255", 255),
    ("kill -TERM $$", 128 + signal.SIGTERM), ("kill -KILL $$", 128 + signal.SIGKILL),
    ("kill -SEGV $$", 128 + signal.SIGSEGV),
])
def test_exit_status_and_signal_death_propagate(site: Site, body: str, expected: int) -> None:
    cmd = site.script("job.sh", f"echo before; {body}\n")
    req = site.request(cmd, stdout="job.out", transfer_output=())
    run = site.run(req)
    assert run.exit_code == expected
    extract_outputs(run.log, req, site.transfer)
    assert (site.iwd / "job.out").read_text() == "before\n"


def test_sigterm_to_the_wrapper_reaches_the_payload(site: Site) -> None:
    cmd = site.script("job.sh", "trap 'echo graceful; exit 7' TERM; echo started; "
                                "while :; do sleep 0.05; done\n")
    req = site.request(cmd, stdout="job.out", transfer_output=())
    pod, secret = site.pod_for(req)
    input_dir = site.root / "pod" / "input"
    assert run_init(pod, secret, input_dir) == [0]
    proc = start_main(pod, input_dir)
    out_file = Path(site.transfer.sandbox_path) / ".kgahp" / "stdout"
    deadline = time.monotonic() + 10
    while not (out_file.exists() and out_file.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.terminate()
    log, _ = proc.communicate(timeout=10)
    assert proc.returncode == 7
    extract_outputs(log.decode(), req, site.transfer)
    assert (site.iwd / "job.out").read_text() == "started\ngraceful\n"


def test_no_stdin_and_unstaged_cmd(site: Site) -> None:
    req = site.request("/bin/sh", stage_cmd=False, arguments=("-c", "cat; echo done"),
                       stdin="/dev/null", stdout="job.out", stderr="/dev/null",
                       transfer_output=())
    assert gather_inputs(req, site.transfer) is None
    run = site.run(req)
    assert run.exit_code == 0
    assert extract_outputs(run.log, req, site.transfer) == [str(site.iwd / "job.out")]
    assert (site.iwd / "job.out").read_text() == "done\n"


def test_shared_mode_writes_streams_in_place(site: Site) -> None:
    cmd = site.script("job.sh", "pwd; cat in.txt; echo err >&2; echo f > made.txt\n")
    (site.iwd / "in.txt").write_text("shared input\n")
    transfer = TransferSettings(mode="shared", shared_volume=f"hostPath:{site.root}")
    req = site.request(cmd, stdout="job.out", stderr="job.err", transfer_input=("in.txt",))
    pod, secret = site.pod_for(req, transfer)
    assert secret is None
    job = pod["spec"]["containers"][0]
    assert job["volumeMounts"][0]["mountPath"] == str(site.iwd)
    run = run_pod(pod, None, site.root / "pod" / "input")
    # the container log holds only the wrapper's CPU line (two lines when `times` measured)
    assert run.exit_code == 0 and run.log.startswith("KGAHP-CPU 1 ")
    assert cpu_usage(run.log) is not None and len(run.log.splitlines()) <= 2
    assert extract_outputs(run.log, req, transfer) == []
    assert (site.iwd / "job.out").read_text() == f"{site.iwd}\nshared input\n"
    assert (site.iwd / "job.err").read_text() == "err\n"
    assert (site.iwd / "made.txt").read_text() == "f\n"


def test_extracted_files_keep_executable_bit(site: Site) -> None:
    cmd = site.script("job.sh", "printf '#!/bin/sh\\n' > tool; chmod 755 tool; echo d > data\n")
    req = site.request(cmd, transfer_output=("tool", "data"))
    extract_outputs(site.run(req).log, req, site.transfer)
    assert stat.S_IMODE((site.iwd / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((site.iwd / "data").stat().st_mode) == 0o644


def test_out_equal_err_is_one_merged_file(site: Site) -> None:
    cmd = site.script("job.sh", "echo one; echo two >&2; echo three\n")
    req = site.request(cmd, stdout="job.log", stderr=str(site.iwd / "job.log"),
                       transfer_output=())
    run = site.run(req)
    assert extract_outputs(run.log, req, site.transfer) == [str(site.iwd / "job.log")]
    assert (site.iwd / "job.log").read_text() == "one\ntwo\nthree\n"


def _with_tools(pod: dict, tooldir: Path, tools: list[str]) -> None:
    tooldir.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found, tool
        (tooldir / tool).symlink_to(found)
    job = pod["spec"]["containers"][0]
    job["env"].append({"name": "PATH", "value": str(tooldir)})


BASIC_TOOLS = ["sh", "mkdir", "tar", "wc", "rm", "cat", "head"]


def test_minimal_image_without_gzip_or_sha256_still_transfers(site: Site) -> None:
    cmd = site.script("job.sh", "cat in.txt; echo out > o.txt\n")
    (site.iwd / "in.txt").write_text("plain\n")
    req = site.request(cmd, stdout="job.out", transfer_input=("in.txt",),
                       transfer_output=("o.txt",))
    pod, secret = site.pod_for(req)
    _with_tools(pod, site.root / "tools", [*BASIC_TOOLS, "base64"])
    run = run_pod(pod, secret, site.root / "pod" / "input")
    assert run.exit_code == 0
    begin = next(line for line in run.log.splitlines() if line.startswith("KGAHP-OUTPUT-BEGIN"))
    assert " - tar" in begin
    extract_outputs(run.log, req, site.transfer)
    assert site.files()["job.out"] == b"plain\n" and site.files()["o.txt"] == b"out\n"


def test_image_without_base64_reports_why(site: Site) -> None:
    cmd = site.script("job.sh", "exit 4\n")
    req = site.request(cmd, stdout="job.out", transfer_output=())
    pod, secret = site.pod_for(req)
    _with_tools(pod, site.root / "tools", BASIC_TOOLS)
    run = run_pod(pod, secret, site.root / "pod" / "input")
    assert run.exit_code == 4
    with pytest.raises(TransferError, match="base64"):
        extract_outputs(run.log, req, site.transfer)


def test_shared_mode_unreadable_stdin_fails_the_job_not_the_wrapper(site: Site) -> None:
    cmd = site.script("job.sh", "echo should not run\n")
    transfer = TransferSettings(mode="shared", shared_volume=f"hostPath:{site.root}")
    req = site.request(cmd, stdin="missing.txt", stdout="job.out")
    pod, _ = site.pod_for(req, transfer)
    run = run_pod(pod, None, site.root / "pod" / "input")
    assert run.exit_code == 127
    assert "missing.txt" in run.log
    assert not (site.iwd / "job.out").exists()


BUSYBOX_TOOLS = ["sh", "cp", "mkdir", "tar", "wc", "rm", "cat", "head", "base64", "sha256sum",
                 "gzip", "cmp", "sleep"]


def _busybox_pod(site: Site, req: JobRequest) -> tuple[dict, dict | None]:
    """The helper image and the job image are both busybox (as with alpine-based images)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox is not installed")
    tooldir = site.root / "busybox"
    tooldir.mkdir(exist_ok=True)
    for tool in BUSYBOX_TOOLS:
        if not (tooldir / tool).exists():
            (tooldir / tool).symlink_to(busybox)
    pod, secret = site.pod_for(req)
    for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
        container.setdefault("env", []).append({"name": "PATH", "value": str(tooldir)})
    return pod, secret


def test_busybox_images_stage_run_and_return_everything(site: Site) -> None:
    tree = site.iwd / "tree"
    tree.mkdir()
    (tree / "t.txt").write_text("T")
    (site.iwd / "in.txt").write_text("stdin line\n")
    (site.iwd / "keep.txt").write_text("same")
    cmd = site.script("job.sh", 'cat tree/t.txt; read l; echo "$l" >&2; '
                                'for a in "$@"; do printf "%s|" "$a"; done; '
                                'echo made > made.txt; exit 5\n')
    args = ("a b", "$(x)", ";", "'q'")
    req = site.request(cmd, arguments=args, stdin="in.txt", stdout="job.out", stderr="job.err",
                       transfer_input=("tree", "keep.txt"))
    pod, secret = _busybox_pod(site, req)
    run = run_pod(pod, secret, site.root / "pod" / "input")
    assert run.init_exit_codes == [0]
    assert run.exit_code == 5
    assert run.log.startswith("KGAHP-OUTPUT-BEGIN") and " tgz" in run.log.splitlines()[0]
    written = extract_outputs(run.log, req, site.transfer)
    assert sorted(os.path.basename(p) for p in written) == ["job.err", "job.out", "made.txt"]
    assert (site.iwd / "job.out").read_text() == "Ta b|$(x)|;|'q'|"
    assert (site.iwd / "job.err").read_text() == "stdin line\n"


def test_busybox_wrapper_forwards_sigterm_and_reports_signals(site: Site) -> None:
    cmd = site.script("job.sh", "trap 'echo graceful; exit 9' TERM; echo started; "
                                "while :; do sleep 0.05; done\n")
    req = site.request(cmd, stdout="job.out", transfer_output=())
    pod, secret = _busybox_pod(site, req)
    input_dir = site.root / "pod" / "input"
    assert run_init(pod, secret, input_dir) == [0]
    proc = start_main(pod, input_dir)
    out_file = Path(site.transfer.sandbox_path) / ".kgahp" / "stdout"
    deadline = time.monotonic() + 10
    while not (out_file.exists() and out_file.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.terminate()
    log, _ = proc.communicate(timeout=10)
    assert proc.returncode == 9
    extract_outputs(log.decode(), req, site.transfer)
    assert (site.iwd / "job.out").read_text() == "started\ngraceful\n"
