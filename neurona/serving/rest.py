"""The REST front end (FastAPI on uvicorn): TF Serving's API under /v1, KServe V2 (with Triton's
binary-tensor extension) under /v2, an admin API for labels and the canary weight, and Prometheus'
/metrics. Every refused request is answered `{"error": message}` with a 4xx status (a 5xx only
for a failure of the server or the model itself).

TF Serving (https://www.tensorflow.org/tfx/serving/api_rest):
  POST /v1/models/{m}[/versions/{v}|/labels/{l}]:predict   {"instances": [...]} | {"inputs": ...}
  GET  /v1/models/{m}[/versions/{v}|/labels/{l}]           version states
  GET  /v1/models/{m}[/versions/{v}|/labels/{l}]/metadata  signature
KServe V2 (https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/):
  GET /v2, /v2/health/live, /v2/health/ready, /v2/models/{m}[/versions/{v}][/ready]
  POST /v2/models/{m}[/versions/{v}]/infer
Admin: GET /v1/admin/models; PUT|DELETE /v1/admin/models/{m}/labels/{l} {"version": v};
  PUT /v1/admin/models/{m}/canary {"weight": w}; POST /v1/admin/reload.
May import: numpy, fastapi, starlette, neurona.serving.core, neurona.serving.protocol.
"""
from __future__ import annotations

import secrets
import time

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from . import protocol as P
from .protocol import InvalidInput, NotFound, PayloadTooLarge, ServingError, Unauthenticated

SERVER_NAME, SERVER_VERSION = "neurona", "0.1.0"
V2_EXTENSIONS = ["binary_tensor_data", "model_repository_labels"]

_TF_BODY = {"content": {"application/json": {"schema": {"type": "object", "properties": {
    "signature_name": {"type": "string"},
    "instances": {"type": "array", "description": "row format: one entry per example"},
    "inputs": {"description": "columnar format: a tensor, or {input name: tensor}"}}}}}, "required": True}
_V2_TENSOR = {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
    "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
    "datatype": {"type": "string", "enum": list(P.V2_TO_NUMPY)}, "parameters": {"type": "object"},
    "data": {"type": "array"}}}
_V2_BODY = {"content": {"application/json": {"schema": {"type": "object", "required": ["inputs"], "properties": {
    "id": {"type": "string"}, "parameters": {"type": "object"},
    "inputs": {"type": "array", "items": _V2_TENSOR},
    "outputs": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                                            "parameters": {"type": "object"}}}}}}}},
    "required": True}
_ERRORS = {code: {"description": desc, "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}}}}}}
    for code, desc in [(400, "invalid request"), (404, "unknown model, version or label"), (413, "body too large"),
                       (429, "queue full"), (503, "deadline passed, draining or not ready")]}


def _error(status, message):
    return JSONResponse({"error": message}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) past `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body has {declared} bytes; this server takes at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _array(value, where):
    try:
        a = np.asarray(value)
    except ValueError as e:
        raise InvalidInput(f"{where}: not a regular array (rows of different lengths?): {e}") from None
    if a.dtype.kind not in "biuf" or a.ndim == 0:
        raise InvalidInput(f"{where}: expected an array of numbers, got {str(value)[:60]!r}")
    return a


def tf_inputs(body, signature) -> tuple[dict, bool]:
    """{input name: array} from a TF Serving predict body, and whether it used the row format."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object with 'instances' or 'inputs'")
    if ("instances" in body) == ("inputs" in body):
        raise InvalidInput("give exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    sig = body.get("signature_name", "serving_default")
    if sig not in ("serving_default", "", None):
        raise InvalidInput(f"unknown signature_name {sig!r:.40}; neurona models have 'serving_default'")
    names = signature.input_names
    if "instances" in body:
        inst = body["instances"]
        if not isinstance(inst, list) or not inst:
            raise InvalidInput("'instances' must be a non-empty list (one entry per example)")
        if all(isinstance(i, dict) for i in inst):
            arrays = {}
            for n in names:
                if not all(n in i for i in inst):
                    raise InvalidInput(f"input {n!r} is missing from some instances")
                arrays[n] = _array([i[n] for i in inst], f"input {n!r}")
            extra = {k for i in inst for k in i} - set(names)
            if extra:
                raise InvalidInput(f"instances name unknown inputs {sorted(extra)[:5]}; the model takes {names}")
            return arrays, True
        if len(names) != 1:
            raise InvalidInput(f"the model takes several inputs {names}: give each instance as an object")
        return {names[0]: _array(inst, f"input {names[0]!r}")}, True
    value = body["inputs"]
    if isinstance(value, dict):
        return {k: _array(v, f"input {k!r}") for k, v in value.items()}, False
    if len(names) != 1:
        raise InvalidInput(f"the model takes several inputs {names}: give 'inputs' as an object")
    return {names[0]: _array(value, f"input {names[0]!r}")}, False


def tf_response(outputs: dict, row_format: bool) -> dict:
    """TF Serving's answer: arrays are left as NumPy (`protocol.dump_json` writes them)."""
    names = list(outputs)
    if row_format:
        if len(names) == 1:
            return {"predictions": outputs[names[0]]}
        rows = len(outputs[names[0]])
        return {"predictions": [{n: outputs[n][i] for n in names} for i in range(rows)]}
    if len(names) == 1:
        return {"outputs": outputs[names[0]]}
    return {"outputs": dict(outputs)}


def _json(value, status=200):
    return Response(P.dump_json(value), status_code=status, media_type="application/json")


class DirectRoute(APIRoute):
    """The route of an inference endpoint (`async def endpoint(request, **path parameters)`, which
    reads and checks its body itself): its handler calls the endpoint straight away instead of
    FastAPI's per-request dependency solving, which for these endpoints only re-reads the path
    parameters as the strings they are, yet cost ~0.1 ms a request. The route, its parameters
    and its `openapi_extra` body stay in the OpenAPI schema like any other."""

    def get_route_handler(self):
        endpoint = self.endpoint

        async def handler(request: Request):
            return await endpoint(request, **request.path_params)
        return handler


class BearerAuth:
    """ASGI middleware: refuse HTTP requests without `Authorization: Bearer <token>` (401), except
    on `open_paths` (health probes, metrics). Plain ASGI rather than an @app.middleware function,
    whose BaseHTTPMiddleware costs every request an extra task and body copy."""

    def __init__(self, app, token, open_paths=()):
        self.app, self.open_paths = app, set(open_paths)
        self.want = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] not in self.open_paths:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not secrets.compare_digest(given, self.want):
                resp = _error(401, "Unauthenticated: a valid 'Authorization: Bearer <token>' header is required")
                return await resp(scope, receive, send)
        return await self.app(scope, receive, send)


def build_app(core, *, max_request_bytes=64 * 2**20, auth_token=None, lifespan=None) -> FastAPI:
    """The FastAPI application over `core` (an InferenceCore)."""
    repo, metrics = core.repository, core.metrics
    app = FastAPI(title="neurona model server", version=SERVER_VERSION, lifespan=lifespan,
                  description="TF Serving REST and KServe V2 inference APIs for saved neurona models.")
    open_paths = ("/v2/health/live", "/v2/health/ready", "/metrics")

    if auth_token:
        app.add_middleware(BearerAuth, token=auth_token, open_paths=open_paths)

    @app.exception_handler(ServingError)
    async def serving_error(request, e: ServingError):
        return _error(e.http_status, str(e))

    # -- TF Serving ---------------------------------------------------------------------------------
    async def tf_predict(request, name, version=None, label=None):
        t0 = time.perf_counter()
        try:
            body = P.parse_json(await read_body(request, max_request_bytes))
            lv = repo.get(name).resolve(version, label)  # the signature to read the body with
            arrays, rows = tf_inputs(body, lv.signature)
        except ServingError as e:
            core.refused(t0, name, "rest-tf", e)
            raise
        out = await core.infer_async(name, arrays, version=lv.version, protocol="rest-tf", strict_dtype=False,
                                     request_id=request.headers.get("x-request-id"))
        return _json(tf_response(out.outputs, rows))

    for suffix, kw in (("", {}), ("/versions/{version}", {"version": True}), ("/labels/{label}", {"label": True})):
        def make(kw=kw):
            async def predict(request: Request, name: str, version: str = None, label: str = None):
                return await tf_predict(request, name, version, label)

            async def status(name: str, version: str = None, label: str = None):
                m = repo.get(name)
                if label is not None:
                    version = m.resolve(label=label).version
                return {"model_version_status": m.status(version)}

            async def metadata(name: str, version: str = None, label: str = None):
                lv = repo.get(name).resolve(version, label)
                sig = lv.signature
                return {"model_spec": {"name": name, "signature_name": "", "version": str(lv.version)},
                        "metadata": {"signature_def": {"signature_def": {"serving_default": {
                            "inputs": {s.name: s.tf() for s in sig.inputs},
                            "outputs": {s.name: s.tf() for s in sig.outputs},
                            "method_name": "tensorflow/serving/predict"}}}}}
            return predict, status, metadata
        predict, status, metadata = make()
        app.router.add_api_route(f"/v1/models/{{name}}{suffix}:predict", predict, methods=["POST"],
                                 route_class_override=DirectRoute, tags=["TF Serving"],
                                 openapi_extra={"requestBody": _TF_BODY}, responses=_ERRORS,
                                 summary=f"Predict{' (version)' if 'version' in kw else ''}"
                                         f"{' (label)' if 'label' in kw else ''}")
        app.get(f"/v1/models/{{name}}{suffix}", tags=["TF Serving"], responses=_ERRORS)(status)
        app.get(f"/v1/models/{{name}}{suffix}/metadata", tags=["TF Serving"], responses=_ERRORS)(metadata)

    # -- KServe V2 ------------------------------------------------------------------------------------
    @app.get("/v2", tags=["KServe V2"])
    async def server_metadata():
        return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": V2_EXTENSIONS}

    @app.get("/v2/health/live", tags=["KServe V2"])
    async def live():
        return {"live": True}

    @app.get("/v2/health/ready", tags=["KServe V2"], responses={400: {"description": "not ready"}})
    async def ready():
        ok = repo.ready() and not core.draining
        return JSONResponse({"ready": ok}, status_code=200 if ok else 400)

    def v2_metadata(name, version):
        m = repo.get(name)
        lv = m.resolve(version)
        return {"name": name, "versions": [str(v) for v in sorted(m.versions)], "platform": "neurona",
                "inputs": [s.v2() for s in lv.signature.inputs], "outputs": [s.v2() for s in lv.signature.outputs]}

    def v2_ready(name, version):
        m = repo.get(name)
        try:
            m.resolve(version)
            ok = not core.draining
        except (NotFound, P.Unavailable):
            ok = False
        return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 400)

    async def v2_infer(request: Request, name, version):
        t0 = time.perf_counter()
        try:
            body = await read_body(request, max_request_bytes)
            head, binary = P.split_binary_body(body, request.headers.get("inference-header-content-length"))
            if not isinstance(head, dict):
                raise InvalidInput("the body must be a JSON object with 'inputs'")
            arrays = P.v2_inputs_from_json(head, binary)
        except ServingError as e:
            core.refused(t0, name, "rest-v2", e)
            raise
        params = head.get("parameters") or {}
        timeout = params.get("timeout") if isinstance(params, dict) else None  # tritonclient: microseconds
        timeout_s = timeout / 1e6 if isinstance(timeout, (int, float)) and timeout > 0 else None
        request_id = head.get("id") if isinstance(head.get("id"), str) else None
        out = await core.infer_async(name, arrays, version=version, protocol="rest-v2", strict_dtype=True,
                                     timeout_s=timeout_s, request_id=request_id or request.headers.get("x-request-id"))
        wanted = P.requested_outputs(head, list(out.outputs))
        resp_head = {"model_name": name, "model_version": str(out.version)}
        if request_id:
            resp_head["id"] = request_id
        content, header_len = P.v2_json_response(resp_head, out.outputs, wanted)
        if header_len is None:
            return Response(content, media_type="application/json")
        return Response(content, media_type="application/octet-stream",
                        headers={"Inference-Header-Content-Length": str(header_len)})

    for suffix in ("", "/versions/{version}"):
        def make_v2():
            async def metadata(name: str, version: str = None):
                return v2_metadata(name, version)

            async def ready_(name: str, version: str = None):
                return v2_ready(name, version)

            async def infer(request: Request, name: str, version: str = None):
                return await v2_infer(request, name, version)
            return metadata, ready_, infer
        metadata, ready_, infer = make_v2()
        app.get(f"/v2/models/{{name}}{suffix}", tags=["KServe V2"], responses=_ERRORS)(metadata)
        app.get(f"/v2/models/{{name}}{suffix}/ready", tags=["KServe V2"], responses=_ERRORS)(ready_)
        app.router.add_api_route(f"/v2/models/{{name}}{suffix}/infer", infer, methods=["POST"],
                                 route_class_override=DirectRoute, tags=["KServe V2"], responses=_ERRORS,
                                 openapi_extra={"requestBody": _V2_BODY})

    # -- admin --------------------------------------------------------------------------------------------
    def model_state(m):
        return {"name": m.name, "versions": m.status(), "labels": dict(m.labels), "canary_weight": m.canary_weight,
                "pending_labels": dict(m.pending_labels), "label_errors": dict(m.label_errors),
                "batching": None if m.config.batching is None else vars(m.config.batching)}

    @app.get("/v1/admin/models", tags=["admin"])
    async def admin_models():
        return {"models": [model_state(m) for m in repo.models.values()]}

    async def _json_object(request):
        body = P.parse_json(await read_body(request, 1 << 16))
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object")
        return body

    @app.put("/v1/admin/models/{name}/labels/{label}", tags=["admin"], responses=_ERRORS,
             openapi_extra={"requestBody": {"content": {"application/json": {"schema": {
                 "type": "object", "required": ["version"], "properties": {"version": {"type": "integer"}}}}}}})
    async def admin_label(request: Request, name: str, label: str):
        body = await _json_object(request)
        v = body.get("version")
        if not isinstance(v, int) or isinstance(v, bool):
            raise InvalidInput(f"'version' must be an integer, got {v!r:.40}")
        m = repo.get(name)
        m.set_label(label, v)
        return model_state(m)

    @app.delete("/v1/admin/models/{name}/labels/{label}", tags=["admin"], responses=_ERRORS)
    async def admin_unlabel(name: str, label: str):
        m = repo.get(name)
        m.remove_label(label)
        return model_state(m)

    @app.put("/v1/admin/models/{name}/canary", tags=["admin"], responses=_ERRORS,
             openapi_extra={"requestBody": {"content": {"application/json": {"schema": {
                 "type": "object", "required": ["weight"], "properties": {"weight": {"type": "number"}}}}}}})
    async def admin_canary(request: Request, name: str):
        body = await _json_object(request)
        m = repo.get(name)
        m.set_canary_weight(body.get("weight"))
        return model_state(m)

    @app.post("/v1/admin/reload", tags=["admin"])
    async def admin_reload():
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(repo.sync)
        return {"models": [model_state(m) for m in repo.models.values()]}

    @app.get("/metrics", tags=["operations"])
    async def prometheus_metrics():
        body, ctype = metrics.render()
        return Response(body, media_type=ctype)

    return app


__all__ = ["build_app", "tf_inputs", "tf_response"]
