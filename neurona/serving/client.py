"""`Client`: a small Python client for neurona's server (or any TF Serving / KServe V2 server):
TF Serving `predict`, V2 `infer` over REST (binary tensors) or gRPC, status, metadata, health, and
the admin calls that move labels and the canary weight.
May import: numpy, httpx, grpcio (lazily), neurona.serving.protocol.
"""
from __future__ import annotations

import json

import numpy as np

from . import protocol as P


class ServerError(Exception):
    """A non-2xx answer: `status` (HTTP status or gRPC code name) and the server's message."""

    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


class Client:
    """Talk to a model server at `url` (REST) and optionally `grpc_address` ("host:port"):

        c = Client("http://127.0.0.1:8501", grpc_address="127.0.0.1:8500")
        c.predict("fashion", x[:4])                              # TF Serving, row format
        c.infer("fashion", {"input": x[:4]})                     # KServe V2 REST, binary tensors
        c.infer("fashion", {"input": x[:4]}, protocol="grpc")    # KServe V2 gRPC
        c.set_label("fashion", "stable", 1)                      # roll back

    (tests/test_serving*.py run these against a live server.)
    """

    def __init__(self, url="http://127.0.0.1:8501", grpc_address=None, token=None, timeout=30.0, verify=True):
        import httpx

        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, verify=verify)
        self._grpc_address, self._token, self._timeout = grpc_address, token, timeout
        self._stub = self._channel = None

    def close(self):
        self._http.close()
        if self._channel is not None:
            self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check(self, r):
        if r.status_code >= 400:
            try:
                msg = r.json().get("error", r.text)
            except (ValueError, AttributeError):
                msg = r.text
            raise ServerError(r.status_code, msg)
        return r

    @staticmethod
    def _path(model, version, label):
        if version is not None and label is not None:
            raise ValueError("give version= or label=, not both")
        return f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "") + \
            (f"/labels/{label}" if label is not None else "")

    # -- TF Serving -----------------------------------------------------------------------------------
    def predict(self, model, x, version=None, label=None, columnar=False):
        """Predictions for `x` (an array, or {input name: array}) as NumPy arrays (a dict for
        several outputs)."""
        def lists(v):
            return {k: np.asarray(a).tolist() for k, a in v.items()} if isinstance(v, dict) else np.asarray(v).tolist()
        if columnar:
            body = {"inputs": lists(x)}
        elif isinstance(x, dict):
            n = len(next(iter(x.values())))
            body = {"instances": [{k: np.asarray(a[i]).tolist() for k, a in x.items()} for i in range(n)]}
        else:
            body = {"instances": lists(x)}
        r = self._check(self._http.post(self._path(model, version, label) + ":predict", json=body)).json()
        out = r["outputs"] if columnar else r["predictions"]
        if isinstance(out, dict):
            return {k: np.asarray(v, np.float32) for k, v in out.items()}
        if out and isinstance(out[0], dict):
            return {k: np.asarray([row[k] for row in out], np.float32) for k in out[0]}
        return np.asarray(out, np.float32)

    def status(self, model, version=None):
        return self._check(self._http.get(self._path(model, version, None))).json()["model_version_status"]

    def metadata(self, model, version=None):
        return self._check(self._http.get(self._path(model, version, None) + "/metadata")).json()

    # -- KServe V2 --------------------------------------------------------------------------------------
    def live(self) -> bool:
        return self._http.get("/v2/health/live").status_code == 200

    def ready(self, model=None, version=None) -> bool:
        if model is None:
            return self._http.get("/v2/health/ready").status_code == 200
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version is not None else "") + "/ready"
        return self._http.get(path).status_code == 200

    def model_metadata(self, model, version=None):
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version is not None else "")
        return self._check(self._http.get(path)).json()

    def infer(self, model, inputs, version=None, protocol="rest"):
        """V2 inference: `inputs` is {name: array} (or one array for a one-input model, named
        "input"); returns ({output name: array}, version that answered). protocol: "rest"
        (binary-tensor extension) or "grpc" (raw contents)."""
        if not isinstance(inputs, dict):
            inputs = {"input": inputs}
        inputs = {k: np.ascontiguousarray(v) for k, v in inputs.items()}
        if protocol == "grpc":
            return self._infer_grpc(model, inputs, version)
        specs, raw = [], []
        for name, a in inputs.items():
            b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
            specs.append({"name": name, "shape": list(a.shape), "datatype": P.v2_datatype(a.dtype),
                          "parameters": {"binary_data_size": len(b)}})
            raw.append(b)
        head = json.dumps({"inputs": specs, "parameters": {"binary_data_output": True}}).encode()
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version is not None else "") + "/infer"
        r = self._check(self._http.post(path, content=head + b"".join(raw),
                                        headers={"Inference-Header-Content-Length": str(len(head)),
                                                 "Content-Type": "application/octet-stream"}))
        n = int(r.headers.get("inference-header-content-length", len(r.content)))
        resp, tail, offset, out = json.loads(r.content[:n]), r.content[n:], 0, {}
        for t in resp["outputs"]:
            dt = P.V2_TO_NUMPY[t["datatype"]]
            size = (t.get("parameters") or {}).get("binary_data_size")
            if size is None:
                out[t["name"]] = np.asarray(t["data"], dt).reshape(t["shape"])
            else:
                out[t["name"]] = np.frombuffer(tail[offset:offset + size], dt).reshape(t["shape"])
                offset += size
        return out, int(resp["model_version"])

    def _infer_grpc(self, model, inputs, version):
        import grpc

        if self._grpc_address is None:
            raise ValueError("Client: give grpc_address= to use protocol='grpc'")
        if self._stub is None:
            self._channel = grpc.insecure_channel(self._grpc_address, options=[
                ("grpc.max_receive_message_length", 64 * 2**20), ("grpc.max_send_message_length", 64 * 2**20)])
            self._stub = P.GRPCInferenceServiceStub(self._channel)
        req = P.messages()["ModelInferRequest"](model_name=model, model_version="" if version is None else str(version))
        for name, a in inputs.items():
            req.inputs.add(name=name, datatype=P.v2_datatype(a.dtype), shape=list(a.shape))
            req.raw_input_contents.append(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
        md = [("authorization", f"Bearer {self._token}")] if self._token else None
        try:
            resp = self._stub.ModelInfer(req, timeout=self._timeout, metadata=md)
        except grpc.RpcError as e:
            raise ServerError(e.code().name, e.details()) from None
        out = {t.name: np.frombuffer(raw, P.V2_TO_NUMPY[t.datatype]).reshape(tuple(t.shape))
               for t, raw in zip(resp.outputs, resp.raw_output_contents)}
        return out, int(resp.model_version)

    # -- admin ------------------------------------------------------------------------------------------
    def set_label(self, model, label, version):
        """Point `label` at a loaded `version` (e.g. roll back: set_label(m, "stable", 1))."""
        return self._check(self._http.put(f"/v1/admin/models/{model}/labels/{label}", json={"version": version})).json()

    def set_canary_weight(self, model, weight):
        return self._check(self._http.put(f"/v1/admin/models/{model}/canary", json={"weight": weight})).json()

    def models(self):
        return self._check(self._http.get("/v1/admin/models")).json()["models"]

    def reload(self):
        return self._check(self._http.post("/v1/admin/reload")).json()

    def metrics(self) -> str:
        return self._check(self._http.get("/metrics")).text
