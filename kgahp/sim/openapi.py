"""OpenAPI v2 (`/openapi/v2`) and v3 (`/openapi/v3`, `/openapi/v3/api/v1`) as a v1.36
kube-apiserver serves them, for the API surface the sim implements, so `kubectl create -f`,
`apply` and `explain` work with validation on.

The documents are the recorded ones (tests/data/k8s-recordings-v1.36/26*) cut down to the
paths the sim serves and the definitions those reach; `python -m kgahp.sim.openapi RECORDINGS`
rebuilds them into kgahp/data, and a test checks the shipped copies are exactly that cut.
HTTP behaviour follows the same recordings: the v3 index lists each group-version's URL with
`?hash=` (SHA-512 of the document); that URL is answered `Cache-Control: public, immutable`,
a stale hash by a 301 to the current one, an unknown group-version by an empty 404.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from aiohttp import web

DATA_V2 = "sim-openapi-v2.json.gz"
DATA_V3 = {"api/v1": "sim-openapi-v3-api-v1.json.gz"}
# Paths the sim serves (see SimApi._dispatch and discovery.py), as the documents spell them.
_CORE = (r"/api/v1/(?:watch/)?(?:namespaces/\{namespace\}/)?"
         r"(?:pods|secrets|configmaps|events|namespaces|nodes)"
         r"(?:/\{name\}(?:/(?:status|log|binding))?)?")
SERVED_PATHS = re.compile(
    rf"(?:{_CORE}|/api/|/api/v1/|/apis/|/version/"
    r"|/apis/authorization\.k8s\.io/(?:v1/(?:selfsubjectaccessreviews)?)?"
    r"|/apis/authentication\.k8s\.io/(?:v1/(?:selfsubjectreviews)?)?)")
NO_CACHE = {"Cache-Control": "no-cache, private"}
PROTOBUF = "application/com.github.proto-openapi.spec"


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            out.add(ref)
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def _closure(paths: dict[str, Any], definitions: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The definitions reachable from `paths` through `$ref`s starting with `prefix`."""
    wanted: set[str] = set()
    todo: set[str] = set()
    _refs(paths, todo)
    while todo:
        ref = todo.pop()
        if not ref.startswith(prefix):
            continue
        name = ref[len(prefix):]
        if name in wanted or name not in definitions:
            continue
        wanted.add(name)
        _refs(definitions[name], todo)
    return {name: definitions[name] for name in sorted(wanted)}


def trim_v2(doc: dict[str, Any]) -> dict[str, Any]:
    paths = {p: v for p, v in doc["paths"].items() if SERVED_PATHS.fullmatch(p)}
    out = {k: v for k, v in doc.items() if k not in ("paths", "definitions", "parameters")}
    out["paths"] = paths
    out["parameters"] = _closure(paths, doc.get("parameters") or {}, "#/parameters/")
    out["definitions"] = _closure({"paths": paths, "parameters": out["parameters"]},
                                  doc["definitions"], "#/definitions/")
    return out


def trim_v3(doc: dict[str, Any]) -> dict[str, Any]:
    paths = {p: v for p, v in doc["paths"].items() if SERVED_PATHS.fullmatch(p)}
    components = dict(doc.get("components") or {})
    components["schemas"] = _closure(paths, components.get("schemas") or {},
                                     "#/components/schemas/")
    return {**doc, "paths": paths, "components": components}


def encode(doc: dict[str, Any]) -> bytes:
    """The bytes served: compact JSON, as the apiserver writes these documents."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


class Document:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.hash = hashlib.sha512(body).hexdigest().upper()
        self.etag = f'"{self.hash}"'
        self.gzipped = gzip.compress(body, 6, mtime=0)


@cache
def _document(name: str) -> Document:
    data = resources.files("kgahp").joinpath("data", name).read_bytes()
    return Document(gzip.decompress(data))


def v3_index() -> dict[str, Any]:
    return {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={_document(f).hash}"}
                      for gv, f in DATA_V3.items()}}


def _send(request: web.Request, doc: Document, headers: dict[str, str]) -> web.Response:
    accept = request.headers.get("Accept", "")
    if PROTOBUF in accept and "json" not in accept and "*/*" not in accept:
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": "only application/json is served by this simulated cluster",
                  "reason": "NotAcceptable", "code": 406}
        return web.Response(status=406, body=json.dumps(status).encode(),
                            content_type="application/json", headers=NO_CACHE)
    headers = {**headers, "Etag": doc.etag, "Vary": "Accept",
               "Last-Modified": "Thu, 01 Jan 1970 00:00:00 GMT"}
    if request.headers.get("If-None-Match") == doc.etag:
        return web.Response(status=304, headers=headers)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=doc.gzipped, content_type="application/json", headers=headers)
    return web.Response(body=doc.body, content_type="application/json", headers=headers)


def serve(request: web.Request, path: str) -> Optional[web.Response]:
    """The answer for an /openapi path, or None when `path` is not one."""
    if path == "/openapi/v2":
        return _send(request, _document(DATA_V2), NO_CACHE)
    if path == "/openapi/v3":
        body = json.dumps(v3_index(), separators=(",", ":")).encode()
        return web.Response(body=body, headers={**NO_CACHE,
                                                "Content-Type": "text/plain; charset=utf-8"})
    if not path.startswith("/openapi/v3/"):
        return None
    group_version = path[len("/openapi/v3/"):]
    name = DATA_V3.get(group_version)
    if name is None:
        return web.Response(status=404, headers=NO_CACHE)
    doc = _document(name)
    asked = request.query.get("hash")
    if asked is None:
        return _send(request, doc, NO_CACHE)
    if asked != doc.hash:
        return web.Response(status=301, content_type="application/json", headers={
            **NO_CACHE, "Location": f"/openapi/v3/{group_version}?hash={doc.hash}"})
    return _send(request, doc, {"Cache-Control": "public, immutable",
                                "Expires": "Fri, 31 Dec 9999 23:59:59 GMT"})


def build(recordings: Path, out: Path) -> None:
    """Write the trimmed documents from the recorded ones (26b: v3 core/v1, 26d: v2)."""
    sources = {DATA_V2: ("26d-openapi-v2.body.json.gz", trim_v2),
               DATA_V3["api/v1"]: ("26b-openapi-v3-api-v1.body.json.gz", trim_v3)}
    for name, (source, trim) in sources.items():
        with gzip.open(recordings / source) as handle:
            doc = json.load(handle)
        (out / name).write_bytes(gzip.compress(encode(trim(doc)), 9, mtime=0))


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(__file__).resolve().parents[1] / "data")
