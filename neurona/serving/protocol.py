"""Wire formats shared by the REST and gRPC front ends: the KServe V2 datatypes and their NumPy
dtypes, the errors every front end maps to its own status codes, the V2 gRPC message classes
(built from the committed `grpc_predict_v2.desc` in a private descriptor pool) and the coding of
tensors as V2 JSON, Triton's binary-tensor extension and gRPC raw contents.

Why a descriptor set and no generated `*_pb2.py`: generated modules register their messages in
protobuf's process-wide pool under `inference.*`, the very names tritonclient's own generated
`service_pb2` registers, so a process importing both (a test, a user's notebook) fails with
"duplicate symbol 'inference.ServerLiveRequest'"; generated modules are also tied to the protobuf
runtime they were generated for. A FileDescriptorSet loaded into a private pool has neither
problem. `python -m neurona.serving.protogen` regenerates it from `grpc_predict_v2.proto`.
May import: numpy, orjson, protobuf (both lazily).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
DESCRIPTOR_SET = _HERE / "grpc_predict_v2.desc"
SERVICE = "inference.GRPCInferenceService"

# KServe V2 datatype <-> NumPy (little-endian, as the binary extension and raw contents require).
V2_TO_NUMPY = {"BOOL": np.dtype(bool), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"),
               "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"),
               "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
               "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
NUMPY_TO_V2 = {v.newbyteorder("="): k for k, v in V2_TO_NUMPY.items()}
# The typed-contents field of InferTensorContents that carries each datatype.
_CONTENTS_FIELD = {"BOOL": "bool_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
                   "UINT32": "uint_contents", "UINT64": "uint64_contents", "INT8": "int_contents",
                   "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
                   "FP32": "fp32_contents", "FP64": "fp64_contents"}


def v2_datatype(dtype) -> str:
    """The V2 datatype name of a NumPy dtype.

    >>> v2_datatype("float32"), v2_datatype(np.int64)
    ('FP32', 'INT64')
    """
    dt = np.dtype(dtype).newbyteorder("=")
    if dt not in NUMPY_TO_V2:
        raise ValueError(f"dtype {dt} has no KServe V2 datatype")
    return NUMPY_TO_V2[dt]


# -- errors: one class per outcome, each knows its HTTP status and gRPC code name ------------------
class ServingError(Exception):
    """An error answered to the client (never a 500): `http_status` and `grpc_code` (the name of a
    `grpc.StatusCode`)."""
    http_status, grpc_code = 500, "INTERNAL"


class InvalidInput(ServingError):
    http_status, grpc_code = 400, "INVALID_ARGUMENT"


class NotFound(ServingError):
    http_status, grpc_code = 404, "NOT_FOUND"


class PayloadTooLarge(ServingError):
    http_status, grpc_code = 413, "RESOURCE_EXHAUSTED"


class Overloaded(ServingError):
    """The model's queue is full: retry later (HTTP 429, gRPC RESOURCE_EXHAUSTED)."""
    http_status, grpc_code = 429, "RESOURCE_EXHAUSTED"


class Unavailable(ServingError):
    """The request's deadline passed before it ran, or the server is draining (HTTP 503, gRPC
    UNAVAILABLE)."""
    http_status, grpc_code = 503, "UNAVAILABLE"


class Unauthenticated(ServingError):
    http_status, grpc_code = 401, "UNAUTHENTICATED"


# -- V2 tensors from JSON, the binary extension and gRPC ---------------------------------------------
def _shape(spec, where) -> tuple:
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise InvalidInput(f"{where}: 'shape' must be a list of non-negative integers, got {shape!r:.80}")
    return tuple(shape)


def _datatype(spec, where) -> np.dtype:
    dt = spec.get("datatype")
    if dt not in V2_TO_NUMPY:
        raise InvalidInput(f"{where}: unsupported datatype {dt!r:.40} (neurona serves "
                           f"{', '.join(V2_TO_NUMPY)})")
    return V2_TO_NUMPY[dt]


def _from_buffer(raw, dtype, shape, where) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(f"{where}: {len(raw)} bytes of data, shape {list(shape)} of {v2_datatype(dtype)} needs "
                           f"{count * dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _from_json_data(data, dtype, shape, where) -> np.ndarray:
    try:
        arr = np.asarray(data)
    except ValueError as e:  # ragged nesting
        raise InvalidInput(f"{where}: 'data' is not a regular array: {e}") from None
    if arr.dtype.kind not in "biuf":
        raise InvalidInput(f"{where}: 'data' must hold numbers (or booleans), got {arr.dtype.kind!r} values")
    if arr.size != int(np.prod(shape, dtype=np.int64)):
        raise InvalidInput(f"{where}: 'data' holds {arr.size} values, shape {list(shape)} needs "
                           f"{int(np.prod(shape, dtype=np.int64))}")
    if dtype.kind in "iu" and arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        raise InvalidInput(f"{where}: datatype {v2_datatype(dtype)} needs integer values")
    return arr.astype(dtype).reshape(shape)


def split_binary_body(body: bytes, header_length) -> tuple[dict, bytes]:
    """Split a request body into its JSON header and the binary tail (Triton's binary-tensor
    extension: the `Inference-Header-Content-Length` header gives the JSON's length)."""
    if header_length is None:
        return parse_json(body), b""
    try:
        n = int(header_length)
    except ValueError:
        raise InvalidInput(f"Inference-Header-Content-Length must be an integer, got {header_length!r:.40}") from None
    if not 0 <= n <= len(body):
        raise InvalidInput(f"Inference-Header-Content-Length {n} is outside the body of {len(body)} bytes")
    return parse_json(body[:n]), body[n:]


def parse_json(body: bytes):
    """The JSON value of `body` (orjson: ~10x faster than json on arrays of floats; strict JSON,
    so NaN/Infinity literals are refused)."""
    import orjson  # here, not at the top: `import neurona.serving` (the CLI's parser) stays light

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"malformed JSON body: {e}") from None


def dump_json(value) -> bytes:
    """JSON bytes of `value`, NumPy arrays included (written as nested lists)."""
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=_json_default)


def _json_default(obj):
    # orjson hands over what it cannot write natively: non-contiguous arrays, float16, NumPy scalars
    if isinstance(obj, (np.ndarray, np.generic)):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def v2_inputs_from_json(request: dict, binary: bytes) -> dict:
    """{name: array} from a V2 JSON request (typed `data`, or `binary_data_size` slices of the
    binary tail in input order)."""
    specs = request.get("inputs")
    if not isinstance(specs, list) or not specs:
        raise InvalidInput("the request needs a non-empty 'inputs' list")
    out, offset = {}, 0
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InvalidInput(f"inputs[{i}] must be an object with a 'name'")
        where = f"input {spec['name']!r}"
        if spec["name"] in out:
            raise InvalidInput(f"{where} is given twice")
        shape, dtype = _shape(spec, where), _datatype(spec, where)
        params = spec.get("parameters") or {}
        if not isinstance(params, dict):
            raise InvalidInput(f"{where}: 'parameters' must be an object")
        size = params.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0 or offset + size > len(binary):
                raise InvalidInput(f"{where}: binary_data_size {size!r:.20} does not fit the {len(binary) - offset} "
                                   "binary bytes left in the body")
            out[spec["name"]] = _from_buffer(binary[offset:offset + size], dtype, shape, where)
            offset += size
        elif "data" in spec:
            out[spec["name"]] = _from_json_data(spec["data"], dtype, shape, where)
        else:
            raise InvalidInput(f"{where} has neither 'data' nor a binary_data_size parameter")
    if offset != len(binary):
        raise InvalidInput(f"the body holds {len(binary) - offset} binary bytes that no input claims")
    return out


def requested_outputs(request: dict, available) -> list[tuple[str, bool]]:
    """[(output name, as binary)] for a V2 JSON request: its `outputs` list, or every output,
    binary when the request sets `binary_data_output`."""
    params = request.get("parameters") or {}
    default_binary = bool(params.get("binary_data_output", False)) if isinstance(params, dict) else False
    asked = request.get("outputs")
    if asked is None:
        return [(name, default_binary) for name in available]
    if not isinstance(asked, list):
        raise InvalidInput("'outputs' must be a list")
    out = []
    for i, spec in enumerate(asked):
        if not isinstance(spec, dict) or spec.get("name") not in available:
            raise InvalidInput(f"outputs[{i}] names no output of the model (outputs: {list(available)})")
        p = spec.get("parameters") or {}
        out.append((spec["name"], bool(p.get("binary_data", default_binary)) if isinstance(p, dict) else default_binary))
    return out


def v2_json_response(head: dict, outputs: dict, wanted) -> tuple[bytes, int | None]:
    """The V2 response body and, when some output travels as binary, the JSON header's length."""
    tensors, tail = [], []
    for name, binary in wanted:
        arr = np.ascontiguousarray(outputs[name])
        t = {"name": name, "datatype": v2_datatype(arr.dtype), "shape": list(arr.shape)}
        if binary:
            raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
            t["parameters"] = {"binary_data_size": len(raw)}
            tail.append(raw)
        else:
            t["data"] = arr.ravel() if arr.dtype != np.float16 else arr.ravel().astype(np.float32)
        tensors.append(t)
    header = dump_json({**head, "outputs": tensors})
    return (header + b"".join(tail), len(header)) if tail else (header, None)


# -- gRPC messages ---------------------------------------------------------------------------------
_MESSAGES = None


def messages():
    """The V2 gRPC message classes by short name (`messages()["ModelInferRequest"]`), built once
    from the committed descriptor set in a private pool."""
    global _MESSAGES
    if _MESSAGES is None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        pool = descriptor_pool.DescriptorPool()
        for f in descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file:
            pool.Add(f)
        fd = pool.FindFileByName("grpc_predict_v2.proto")
        _MESSAGES = {name: message_factory.GetMessageClass(d) for name, d in fd.message_types_by_name.items()}
    return _MESSAGES


# (method, request message, response message) of GRPCInferenceService
GRPC_METHODS = [("ServerLive", "ServerLiveRequest", "ServerLiveResponse"),
                ("ServerReady", "ServerReadyRequest", "ServerReadyResponse"),
                ("ModelReady", "ModelReadyRequest", "ModelReadyResponse"),
                ("ServerMetadata", "ServerMetadataRequest", "ServerMetadataResponse"),
                ("ModelMetadata", "ModelMetadataRequest", "ModelMetadataResponse"),
                ("ModelInfer", "ModelInferRequest", "ModelInferResponse")]


class GRPCInferenceServiceStub:
    """A client stub for GRPCInferenceService on a `grpc.Channel` (what grpc_tools would generate):
    `stub.ModelInfer(request, timeout=...)`."""

    def __init__(self, channel):
        msgs = messages()
        for method, req, resp in GRPC_METHODS:
            setattr(self, method, channel.unary_unary(f"/{SERVICE}/{method}",
                                                      request_serializer=msgs[req].SerializeToString,
                                                      response_deserializer=msgs[resp].FromString))


def grpc_inputs(request) -> dict:
    """{name: array} from a ModelInferRequest (raw_input_contents, or typed contents)."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs")
    out = {}
    for i, t in enumerate(request.inputs):
        where = f"input {t.name!r}"
        if t.name in out:
            raise InvalidInput(f"{where} is given twice")
        if t.datatype not in V2_TO_NUMPY:
            raise InvalidInput(f"{where}: unsupported datatype {t.datatype!r:.40}")
        dtype, shape = V2_TO_NUMPY[t.datatype], tuple(t.shape)
        if any(d < 0 for d in shape):
            raise InvalidInput(f"{where}: negative dimension in shape {list(shape)}")
        if raw:
            out[t.name] = _from_buffer(raw[i], dtype, shape, where)
        else:
            field = _CONTENTS_FIELD.get(t.datatype)
            if field is None:
                raise InvalidInput(f"{where}: {t.datatype} must travel in raw_input_contents")
            out[t.name] = _from_json_data(list(getattr(t.contents, field)), dtype, shape, where)
    return out


def grpc_response(model_name, version, request_id, outputs: dict, names):
    resp = messages()["ModelInferResponse"](model_name=model_name, model_version=str(version), id=request_id)
    for name in names:
        arr = np.ascontiguousarray(outputs[name])
        resp.outputs.add(name=name, datatype=v2_datatype(arr.dtype), shape=list(arr.shape))
        resp.raw_output_contents.append(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    return resp
