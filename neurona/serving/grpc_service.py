"""The gRPC front end: KServe V2's `inference.GRPCInferenceService` (ServerLive, ServerReady,
ModelReady, ServerMetadata, ModelMetadata, ModelInfer with raw_input_contents and
raw_output_contents) on a grpcio thread-pool server. Handlers are registered through grpcio's
generic-handler API with the message classes of `neurona.serving.protocol` (what a generated
`*_pb2_grpc.py` would do). Errors map to status codes: INVALID_ARGUMENT, NOT_FOUND,
RESOURCE_EXHAUSTED (queue full, or more than `max_concurrent_rpcs` in flight), UNAVAILABLE.
May import: grpcio, neurona.serving.protocol, neurona.serving.core.
"""
from __future__ import annotations

import secrets
import time
from concurrent import futures

import grpc

from . import protocol as P
from .protocol import NotFound, ServingError, Unavailable

_OPEN_METHODS = ("ServerLive", "ServerReady")


class _Auth(grpc.ServerInterceptor):
    """Require `authorization: Bearer <token>` metadata, except on the health methods."""

    def __init__(self, token):
        self._want = f"Bearer {token}".encode()

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid 'authorization: Bearer <token>' is required")
        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation, details):
        if details.method.rsplit("/", 1)[-1] in _OPEN_METHODS:
            return continuation(details)
        given = dict(details.invocation_metadata).get("authorization", "")
        if secrets.compare_digest(str(given).encode(), self._want):
            return continuation(details)
        return self._deny


class InferenceServicer:
    """The six V2 methods over an InferenceCore."""

    def __init__(self, core, server_name="neurona", server_version="0.1.0", extensions=()):
        self.core = core
        self.msgs = P.messages()
        self.meta = (server_name, server_version, list(extensions))

    def ServerLive(self, request, context):  # noqa: N802 - the protocol's method names
        return self.msgs["ServerLiveResponse"](live=True)

    def ServerReady(self, request, context):  # noqa: N802
        return self.msgs["ServerReadyResponse"](ready=self.core.repository.ready() and not self.core.draining)

    def ModelReady(self, request, context):  # noqa: N802
        try:
            self.core.repository.get(request.name).resolve(request.version or None)
            ok = not self.core.draining
        except (NotFound, Unavailable):
            ok = False
        except ServingError as e:
            context.abort(getattr(grpc.StatusCode, e.grpc_code), str(e))
        return self.msgs["ModelReadyResponse"](ready=ok)

    def ServerMetadata(self, request, context):  # noqa: N802
        name, version, ext = self.meta
        return self.msgs["ServerMetadataResponse"](name=name, version=version, extensions=ext)

    def ModelMetadata(self, request, context):  # noqa: N802
        try:
            m = self.core.repository.get(request.name)
            lv = m.resolve(request.version or None)
        except ServingError as e:
            context.abort(getattr(grpc.StatusCode, e.grpc_code), str(e))
        T = self.msgs["ModelMetadataResponse"].TensorMetadata
        return self.msgs["ModelMetadataResponse"](
            name=m.name, versions=[str(v) for v in sorted(m.versions)], platform="neurona",
            inputs=[T(**s.v2()) for s in lv.signature.inputs], outputs=[T(**s.v2()) for s in lv.signature.outputs])

    def ModelInfer(self, request, context):  # noqa: N802
        t0 = time.perf_counter()
        try:
            arrays = P.grpc_inputs(request)
        except ServingError as e:
            self.core.refused(t0, request.model_name, "grpc", e, request.id or None)
            context.abort(getattr(grpc.StatusCode, e.grpc_code), str(e))
        try:
            remaining = context.time_remaining()
            out = self.core.infer(request.model_name, arrays, version=request.model_version or None, protocol="grpc",
                                  strict_dtype=True, timeout_s=remaining, request_id=request.id or None)
            names = list(out.outputs)
            if request.outputs:
                names = [o.name for o in request.outputs]
                unknown = [n for n in names if n not in out.outputs]
                if unknown:
                    raise P.InvalidInput(f"requested outputs {unknown} are not outputs of the model "
                                         f"(outputs: {list(out.outputs)})")
        except ServingError as e:
            context.abort(getattr(grpc.StatusCode, e.grpc_code), str(e))
        return P.grpc_response(request.model_name, out.version, request.id, out.outputs, names)


def build_grpc_server(core, address, *, threads=16, max_concurrent_rpcs=256, max_message_bytes=64 * 2**20,
                      auth_token=None, tls=None):
    """A started-later grpc.Server serving V2 on `address` ("host:port", port 0 = any free one);
    returns (server, bound port). `tls`: (cert PEM bytes, key PEM bytes) or None."""
    servicer = InferenceServicer(core, extensions=["binary_tensor_data"])
    msgs = P.messages()
    handlers = {method: grpc.unary_unary_rpc_method_handler(getattr(servicer, method),
                                                            request_deserializer=msgs[req].FromString,
                                                            response_serializer=msgs[resp].SerializeToString)
                for method, req, resp in P.GRPC_METHODS}
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="neurona-grpc"),
                         handlers=[grpc.method_handlers_generic_handler(P.SERVICE, handlers)],
                         interceptors=[_Auth(auth_token)] if auth_token else None,
                         maximum_concurrent_rpcs=max_concurrent_rpcs,
                         options=[("grpc.max_receive_message_length", max_message_bytes),
                                  ("grpc.max_send_message_length", max_message_bytes),
                                  ("grpc.so_reuseport", 1)])  # `--workers N` share one port
    if tls:
        port = server.add_secure_port(address, grpc.ssl_server_credentials([(tls[1], tls[0])]))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"gRPC could not bind {address}")
    return server, port
