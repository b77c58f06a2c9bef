"""The sim's OpenAPI v2/v3 documents, pinned to the v1.36 recordings (26*): the shipped copies are
the recorded documents cut to what the sim serves, and the HTTP exchanges (index, hash-pinned
immutable URLs, stale-hash redirect, unknown group 404, gzip) answer as the recordings do.
With a kubectl that validates through OpenAPI v3 (1.30 or newer), `kubectl create -f` and
`kubectl explain` work against the sim with validation on."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
import urllib3

from kgahp_sim import openapi

REC = Path(__file__).resolve().parents[1] / "data" / "k8s-recordings-v1.36"
DATA = Path(openapi.__file__).resolve().parent / "data"


def _recording(name: str) -> dict[str, Any]:
    return dict(json.loads((REC / f"{name}.json").read_text()))


def _recorded_body(name: str) -> Any:
    with gzip.open(REC / f"{name}.body.json.gz") as handle:
        return json.load(handle)


@pytest.fixture
def http(sim: Any) -> Iterator[Any]:
    sim.require_sim("the documents are the sim's cut of the recorded ones")
    pool = urllib3.PoolManager()
    token = sim.token()

    def get(path: str, **headers: str) -> urllib3.BaseHTTPResponse:
        return pool.request("GET", sim.url + path, redirect=False, decode_content=False,
                            headers={"Authorization": f"Bearer {token}",
                                     "Accept": "application/json", **headers})

    yield get
    pool.clear()


def test_shipped_documents_are_the_recordings_cut_to_what_the_sim_serves() -> None:
    v2 = _recorded_body("26d-openapi-v2")
    v3 = _recorded_body("26b-openapi-v3-api-v1")
    with gzip.open(DATA / openapi.DATA_V2) as handle:
        assert json.load(handle) == openapi.trim_v2(v2)
    with gzip.open(DATA / openapi.DATA_V3["api/v1"]) as handle:
        assert json.load(handle) == openapi.trim_v3(v3)
    with gzip.open(DATA / openapi.DATA_V3["apis/batch/v1"]) as handle:
        assert json.load(handle) == openapi.trim_v3(_recorded_body("26c-openapi-v3-apis-batch-v1"))
    for group_version, name in openapi.DERIVED_V3.items():
        with gzip.open(DATA / name) as handle:
            assert json.load(handle) == openapi.v3_from_v2(v2, group_version)
    shipped = sum((DATA / name).stat().st_size for name in (
        openapi.DATA_V2, *openapi.DATA_V3.values(), *openapi.DERIVED_V3.values()))
    # the full recorded pair is 340 KB compressed; batch/v1 (Jobs, whose schema embeds the pod
    # template's) adds 62 KB
    assert shipped < 275_000


def _without_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


@pytest.mark.parametrize("recorded,group_version", [
    ("26b-openapi-v3-api-v1", "api/v1"), ("26c-openapi-v3-apis-batch-v1", "apis/batch/v1")])
def test_v3_derived_from_v2_matches_the_recorded_v3(recorded: str, group_version: str) -> None:
    """The groups with no recorded v3 document get one derived from v2; the derivation is held
    to the two group-versions recorded both ways. Field defaults are not in v2, so not compared."""
    v2 = _recorded_body("26d-openapi-v2")
    v3 = _recorded_body(recorded)
    derived = openapi.v3_from_v2(v2, group_version, served=re.compile(".*"))
    assert derived["paths"] == v3["paths"]
    assert _without_defaults(derived["components"]) == _without_defaults(v3["components"])
    assert derived["openapi"] == v3["openapi"] and derived["info"] == v3["info"]


def test_trim_keeps_served_paths_and_every_definition_they_reach() -> None:
    v2 = openapi.trim_v2(_recorded_body("26d-openapi-v2"))
    assert "/api/v1/namespaces/{namespace}/pods/{name}/log" in v2["paths"]
    assert "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" in v2["paths"]
    assert "/api/v1/namespaces/{namespace}/services" not in v2["paths"]
    assert "/apis/batch/v1/namespaces/{namespace}/jobs" in v2["paths"]      # Jobs are served
    assert "/apis/batch/v1/namespaces/{namespace}/cronjobs" not in v2["paths"]
    assert "io.k8s.api.core.v1.Pod" in v2["definitions"]
    assert "io.k8s.api.batch.v1.Job" in v2["definitions"]
    assert "io.k8s.api.batch.v1.CronJob" not in v2["definitions"]
    refs: set[str] = set()
    openapi._refs(v2, refs)
    for ref in refs:
        if ref.startswith("#/definitions/"):
            assert ref.split("/")[-1] in v2["definitions"], ref
    v3 = openapi.trim_v3(_recorded_body("26b-openapi-v3-api-v1"))
    refs = set()
    openapi._refs(v3, refs)
    assert all(r.split("/")[-1] in v3["components"]["schemas"] for r in refs)


def test_v3_index_lists_hash_pinned_urls(http: Any) -> None:
    recorded = _recording("26a-openapi-v3-index")["response"]
    resp = http("/openapi/v3")
    assert resp.status == recorded["status"] == 200
    for header in ("Content-Type", "Cache-Control"):
        assert resp.headers[header] == recorded["headers"][header]
    index = json.loads(resp.data)
    from kgahp_sim import discovery

    groups = {g["name"] for g in discovery.group_list()["groups"]}
    assert set(index["paths"]) == {"api/v1"} | {f"apis/{g}/v1" for g in groups}
    assert {"apis/authorization.k8s.io/v1", "apis/authentication.k8s.io/v1"} <= set(
        index["paths"])
    for group_version, entry in index["paths"].items():
        doc = http(entry["serverRelativeURL"])
        assert doc.status == 200, group_version
        assert json.loads(doc.data)["paths"], group_version
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    recorded_url = _recorded_body("26a-openapi-v3-index")["paths"]["api/v1"]["serverRelativeURL"]
    shape = re.compile(r"/openapi/v3/api/v1\?hash=[0-9A-F]{128}")
    assert shape.fullmatch(url) and shape.fullmatch(recorded_url)
    pinned = http(url)
    recorded = _recording("26e-openapi-v3-batch-v1-hash-pinned-immutable")["response"]
    assert pinned.status == 200
    assert pinned.headers["Cache-Control"] == recorded["headers"]["Cache-Control"]
    assert "Expires" in pinned.headers and "Etag" in pinned.headers
    assert hashlib.sha512(pinned.data).hexdigest().upper() == url.rsplit("=", 1)[1]
    doc = json.loads(pinned.data)
    assert doc["openapi"] == "3.0.0"
    assert "io.k8s.api.core.v1.Pod" in doc["components"]["schemas"]


def test_unpinned_stale_and_unknown(http: Any) -> None:
    plain = http("/openapi/v3/api/v1")
    assert plain.status == 200 and plain.headers["Cache-Control"] == "no-cache, private"
    stale = http("/openapi/v3/api/v1?hash=0000")
    recorded = _recording("26f-openapi-v3-wrong-hash-redirect")["response"]
    assert stale.status == recorded["status"] == 301
    assert stale.headers["Location"].startswith("/openapi/v3/api/v1?hash=")
    assert stale.headers["Location"] == json.loads(http("/openapi/v3").data)[
        "paths"]["api/v1"]["serverRelativeURL"]
    assert stale.data == b""
    unknown = http("/openapi/v3/apis/nosuch.group/v1")
    recorded = _recording("26g-openapi-v3-unknown-group-404")["response"]
    assert unknown.status == recorded["status"] == 404
    assert unknown.data == b"" and unknown.headers["Content-Length"] == "0"
    # a group the recorded server has but the sim does not implement is just as unknown
    assert http("/openapi/v3/apis/apps/v1").status == 404
    assert http("/openapi/v3/apis/batch/v1").status == 200


def test_v2_document_plain_and_gzip(http: Any) -> None:
    plain = http("/openapi/v2")
    assert plain.status == 200 and plain.headers["Content-Type"] == "application/json"
    doc = json.loads(plain.data)
    assert doc["swagger"] == "2.0" and doc["info"] == {"title": "Kubernetes", "version": "1.36"}
    pod = doc["definitions"]["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "Pod", "version": "v1"}]
    recorded = _recording("26d2-openapi-v2-gzip")["response"]
    zipped = http("/openapi/v2", **{"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == recorded["headers"]["Content-Encoding"]
    assert gzip.decompress(zipped.data) == plain.data


def test_anonymous_may_not_read_openapi(sim: Any) -> None:
    sim.require_sim("anonymous access is the cluster's policy")
    resp = urllib3.PoolManager().request("GET", sim.url + "/openapi/v3")
    assert resp.status == 403


# ---- kubectl ----------------------------------------------------------------------------------
def _kubectl() -> Optional[str]:
    """A kubectl of 1.30 or newer (those validate through OpenAPI v3; 1.28 asks for the v2
    document in protobuf, which the sim does not serve). gcloud's dispatcher picks a version
    by the server's, so a versioned binary beside it is preferred."""
    found = shutil.which("kubectl")
    if not found:
        return None
    real = Path(os.path.realpath(found))
    versioned = sorted(real.parent.glob("kubectl.1.*"),
                       key=lambda p: int(p.name.rsplit(".", 1)[1]))
    if versioned and int(versioned[-1].name.rsplit(".", 1)[1]) >= 30:
        return str(versioned[-1])
    out = subprocess.run([found, "version", "--client", "-o", "json"], capture_output=True,
                         text=True, timeout=30, check=False).stdout
    try:
        minor = int(re.sub(r"\D", "", json.loads(out)["clientVersion"]["minor"]))
    except (ValueError, KeyError):
        return None
    return found if minor >= 30 and "dispatcher" not in out else None


@pytest.fixture
def kubectl_sim(tmp_path: Path) -> Iterator[tuple[str, str]]:
    binary = _kubectl()
    if binary is None or os.environ.get("KGAHP_TEST_KUBECONFIG"):
        pytest.skip("needs kubectl >= 1.30 and the simulator")
    from kgahp_sim import SimCluster, SimConfig

    cluster = SimCluster(SimConfig(workdir=str(tmp_path / "sim"), schedule_delay=0.01,
                                   start_delay=0.05), anonymous_admin=True).start()
    try:
        yield binary, cluster.url
    finally:
        cluster.stop()


def _run(binary: str, url: str, *args: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([binary, "--server", url, "--cache-dir", str(cache), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_kubectl_create_and_apply_with_validation(kubectl_sim: tuple[str, str],
                                                  tmp_path: Path) -> None:
    binary, url = kubectl_sim
    pod = tmp_path / "pod.yaml"
    pod.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: validated\nspec:\n"
                   "  restartPolicy: Never\n  containers:\n  - name: c\n    image: busybox:1.36\n"
                   "    command: [sh, -c, 'exit 0']\n")
    done = _run(binary, url, "create", "-f", str(pod), "--validate=true", cache=tmp_path / "c")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pod/validated created"
    labelled = tmp_path / "labelled.yaml"
    labelled.write_text(pod.read_text().replace("  name: validated\n",
                                                "  name: validated\n  labels: {tier: batch}\n"))
    done = _run(binary, url, "apply", "-f", str(labelled), cache=tmp_path / "c")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pod/validated configured"
    bad = tmp_path / "bad.yaml"
    bad.write_text(pod.read_text().replace("name: validated", "name: bad").replace(
        "    image:", "    imagePullPolicyy: Always\n    image:"))
    done = _run(binary, url, "create", "-f", str(bad), "--validate=strict", cache=tmp_path / "c")
    assert done.returncode != 0
    assert 'unknown field "spec.containers[0].imagePullPolicyy"' in done.stderr


def test_kubectl_explain(kubectl_sim: tuple[str, str], tmp_path: Path) -> None:
    binary, url = kubectl_sim
    done = _run(binary, url, "explain", "pods.spec.restartPolicy", cache=tmp_path / "c")
    assert done.returncode == 0, done.stderr
    assert "restartPolicy" in done.stdout and "Never" in done.stdout
