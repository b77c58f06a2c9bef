"""Files and credentials end to end (issue 6): real local processes in the simulated cluster,
files shipped through the Kubernetes API (a per-job Secret in, the framed log out)."""

from __future__ import annotations

import os
import stat
import time

import pytest
from harness import TEST_IMAGE, managed_objects

from kgahp.model import COMPLETED, HELD, RUNNING

JOB = """\
#!/bin/sh
echo "args: $1|$2"
echo "input: $(cat in.txt)"
echo "stdin: $(cat)"
echo "dir: $(cat data/nested/deep.txt)"
echo "to stderr" >&2
cp blob.bin blob.out
echo "made" > result.txt
"""


@pytest.fixture
def files_gahp(make_gahp):
    return make_gahp(TRANSFER_MODE="api")


def _write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)


def test_inputs_stdin_streams_and_outputs_round_trip(files_gahp):
    g = files_gahp
    iwd = str(g.iwd)
    blob = bytes(range(256)) * 40
    _write(f"{iwd}/job.sh", JOB, 0o755)
    _write(f"{iwd}/in.txt", "hello input\n")
    _write(f"{iwd}/stdin.txt", "from stdin\n")
    _write(f"{iwd}/data/nested/deep.txt", "deep file\n")
    _write(f"{iwd}/blob.bin", blob)
    job_id = g.submit("files_1.0", Cmd=f"{iwd}/job.sh", StageCmd=True,
                      KubernetesImage=TEST_IMAGE, Arguments="'two words' x;$(id)",
                      In="stdin.txt", Out="job.out", Err="job.err",
                      TransferInput="in.txt,data,blob.bin",
                      TransferOutput="result.txt,blob.out",
                      TransferOutputRemaps="result.txt=renamed/result.txt")
    os.makedirs(f"{iwd}/renamed", exist_ok=True)
    _, ad = g.wait_status(job_id, {COMPLETED, HELD}, timeout=60)
    assert ad.eval("JobStatus") == COMPLETED, ad.get("HoldReason")
    assert ad.eval("ExitCode") == 0
    out = open(f"{iwd}/job.out").read()
    assert out == ("args: two words|x;$(id)\ninput: hello input\nstdin: from stdin\n"
                   "dir: deep file\n")
    assert open(f"{iwd}/job.err").read() == "to stderr\n"
    assert open(f"{iwd}/renamed/result.txt").read() == "made\n"
    assert not os.path.exists(f"{iwd}/result.txt")
    assert open(f"{iwd}/blob.out", "rb").read() == blob


def test_missing_declared_output_holds_with_its_name(files_gahp):
    g = files_gahp
    _write(f"{g.iwd}/quiet.sh", "#!/bin/sh\necho nothing\n", 0o755)
    job_id = g.submit("missing_1.0", Cmd=f"{g.iwd}/quiet.sh", StageCmd=True,
                      KubernetesImage=TEST_IMAGE, TransferOutput="never.txt")
    _, ad = g.wait_status(job_id, {COMPLETED, HELD}, timeout=60)
    assert ad.eval("JobStatus") == HELD
    assert "never.txt" in ad.eval("HoldReason")


def test_oversized_input_sandbox_fails_the_submit_with_size_limit_and_knob(make_gahp):
    g = make_gahp(TRANSFER_MODE="api", MAX_INPUT_BYTES="1000")
    _write(f"{g.iwd}/big.dat", b"x" * 5000)
    _write(f"{g.iwd}/j.sh", "#!/bin/sh\ntrue\n", 0o755)
    code, msg, _ = g.driver.submit(g.ad("big_1.0", Cmd=f"{g.iwd}/j.sh", StageCmd=True,
                                        TransferInput="big.dat"))
    assert code != 0
    assert "1000" in msg and "KGAHP_MAX_INPUT_BYTES" in msg
    assert g.pods() == []


def test_hostile_remap_never_writes_outside_iwd(files_gahp):
    g = files_gahp
    _write(f"{g.iwd}/evil.sh", "#!/bin/sh\necho pwned > x\n", 0o755)
    target = g.tmp / "etc" / "x"
    code, msg, job_id = g.driver.submit(g.ad(
        "evil_1.0", Cmd=f"{g.iwd}/evil.sh", StageCmd=True, KubernetesImage=TEST_IMAGE,
        TransferOutput="x", TransferOutputRemaps="x=../../etc/x"))
    if code == 0:   # refused when the output comes back: held, saying why
        _, ad = g.wait_status(job_id, {COMPLETED, HELD}, timeout=60)
        assert ad.eval("JobStatus") == HELD
        assert "../../etc/x" in ad.eval("HoldReason")
    else:           # or refused at submit
        assert "../../etc/x" in msg
    assert not target.exists()
    assert not os.path.exists(os.path.join(g.iwd, "..", "..", "etc", "x"))


def test_refreshed_proxy_reaches_the_running_process(files_gahp):
    g = files_gahp
    proxy = g.iwd / "x509up"
    _write(str(proxy), "PROXY-ONE\n")
    os.chmod(proxy, 0o600)
    _write(f"{g.iwd}/watch.sh", """#!/bin/sh
i=0
while [ $i -lt 300 ]; do
  if grep -q PROXY-TWO "$X509_USER_PROXY"; then echo "saw the new proxy"; exit 0; fi
  sleep 0.1; i=$((i+1))
done
echo "never saw it"; exit 1
""", 0o755)
    job_id = g.submit("proxy_1.0", Cmd=f"{g.iwd}/watch.sh", StageCmd=True,
                      KubernetesImage=TEST_IMAGE, x509userproxy=str(proxy),
                      Out="proxy.out")
    g.wait_status(job_id, {RUNNING}, timeout=30)
    _write(str(proxy), "PROXY-TWO\n")
    t0 = time.monotonic()
    assert g.driver.refresh_proxy(job_id, str(proxy)) == (0, "Proxy renewed")
    assert time.monotonic() - t0 < 5
    _, ad = g.wait_status(job_id, {COMPLETED, HELD}, timeout=60)
    assert ad.eval("ExitCode") == 0
    assert open(f"{g.iwd}/proxy.out").read() == "saw the new proxy\n"
    # nothing the proxy held appears in kgahp's log or its (private) state
    log = g.log.read_text()
    assert "PROXY-ONE" not in log and "PROXY-TWO" not in log
    assert stat.S_IMODE(os.stat(g.log).st_mode) & 0o077 == 0
    # a finished job has nothing to renew, and says so as blahpd does
    assert g.driver.refresh_proxy(job_id, str(proxy))[0] == 0


def test_shared_volume_mode_writes_streams_in_place(make_gahp, sim, tmp_path):
    sim.require_sim("simulator only: the shared volume is a host path of this machine")
    shared = tmp_path / "shared"
    shared.mkdir()
    g = make_gahp(TRANSFER_MODE="shared", SHARED_VOLUME=f"hostPath:{shared}")
    iwd = shared / "job"
    iwd.mkdir()
    _write(f"{iwd}/in.txt", "shared input\n")
    _write(f"{iwd}/job.sh", "#!/bin/sh\ncat in.txt\necho err >&2\necho out > made.txt\n", 0o755)
    job_id = g.submit("shared_1.0", Cmd=f"{iwd}/job.sh", Iwd=str(iwd), StageCmd=True,
                      KubernetesImage=TEST_IMAGE, Out="s.out", Err="s.err")
    _, ad = g.wait_status(job_id, {COMPLETED, HELD}, timeout=60)
    assert ad.eval("JobStatus") == COMPLETED, ad.get("HoldReason")
    assert (iwd / "s.out").read_text() == "shared input\n"
    assert (iwd / "s.err").read_text() == "err\n"
    assert (iwd / "made.txt").read_text() == "out\n"
    volumes = [v for p in g.pods() for v in p["spec"]["volumes"]]
    assert any(v.get("hostPath", {}).get("path") == str(shared) for v in volumes)
    assert not any("secret" in v and v["name"].startswith("kgahp-input") for v in volumes)


def test_dollar_signs_reach_the_payload_literally(files_gahp):
    g = files_gahp
    _write(f"{g.iwd}/show.sh", '#!/bin/sh\necho "$1|$2|$V"\n', 0o755)
    job_id = g.submit("dollar_1.0", Cmd=f"{g.iwd}/show.sh", StageCmd=True,
                      KubernetesImage=TEST_IMAGE, Arguments="'$(V)' 'cost $$5'",
                      Environment="V=$(V)x", Out="dollar.out")
    _, ad = g.wait_status(job_id, {COMPLETED, HELD}, timeout=60)
    assert ad.eval("JobStatus") == COMPLETED, ad.get("HoldReason")
    assert open(f"{g.iwd}/dollar.out").read() == "$(V)|cost $$5|$(V)x\n"


def test_declared_token_files_travel_as_credentials_not_inputs(make_gahp):
    g = make_gahp(TRANSFER_MODE="api", CREDENTIAL_FILES="idtoken")
    _write(f"{g.iwd}/idtoken", "TOKEN-SECRET-123\n", 0o600)
    _write(f"{g.iwd}/in.txt", "plain input\n")
    _write(f"{g.iwd}/pilot.sh", """#!/bin/sh
cat "$KGAHP_CREDENTIALS/idtoken"
stat -c %a "$KGAHP_CREDENTIALS/idtoken"
cat in.txt
test -e idtoken && echo "token leaked into the sandbox"
exit 0
""", 0o755)
    job_id = g.submit("token_1.0", Cmd=f"{g.iwd}/pilot.sh", StageCmd=True,
                      KubernetesImage=TEST_IMAGE, TransferInput="idtoken,in.txt",
                      Out="token.out")
    _, ad = g.wait_status(job_id, {COMPLETED, HELD}, timeout=60)
    assert ad.eval("JobStatus") == COMPLETED, ad.get("HoldReason")
    assert open(f"{g.iwd}/token.out").read() == "TOKEN-SECRET-123\n600\nplain input\n"
    assert "TOKEN-SECRET-123" not in g.log.read_text()


def test_a_job_life_in_api_mode_costs_at_most_five_requests(make_gahp):
    """Issue 16: a whole job life with files through the API (inputs in, outputs back, the pod
    and its Secret gone) is at most five requests, counted by the API server."""
    g = make_gahp(TRANSFER_MODE="api", POD_RETENTION="0")
    g.sim.require_sim("simulator only: counts the requests the API server received")
    iwd = str(g.iwd)
    _write(f"{iwd}/job.sh", "#!/bin/sh\ncat in.txt > out.txt\necho done\n", 0o755)
    _write(f"{iwd}/in.txt", "hello\n")
    time.sleep(0.5)                    # the cache's list and watch are in
    before = g.sim.stats.snapshot()
    job_id = g.submit("life_1.0", Cmd=f"{iwd}/job.sh", StageCmd=True,
                      KubernetesImage=TEST_IMAGE, Out="job.out", Err="job.err",
                      TransferInput="in.txt", TransferOutput="out.txt")
    _, ad = g.wait_status(job_id, {COMPLETED, HELD}, timeout=60)
    assert ad.eval("JobStatus") == COMPLETED, ad.get("HoldReason")
    assert open(f"{iwd}/out.txt").read() == "hello\n"
    assert open(f"{iwd}/job.out").read() == "done\n"
    deadline = time.monotonic() + 30
    while g.pods() or managed_objects(g.sim, "secrets"):
        assert time.monotonic() < deadline, "the pod or its Secret was left behind"
        time.sleep(0.2)
    time.sleep(0.5)
    after = g.sim.stats.snapshot()
    # the test's own look at what is left is a list; kgahp's watch was opened before
    made = {f"{verb} {resource}/{sub}": n - before.get((verb, resource, sub), 0)
            for (verb, resource, sub), n in after.items()
            if n > before.get((verb, resource, sub), 0) and verb not in ("watch", "list")}
    assert sum(made.values()) <= 5, made
