"""neurona.serving: a model server for saved neurona models, speaking TF Serving's REST API and
the KServe V2 / Open Inference Protocol over REST (with Triton's binary tensors) and gRPC, with
dynamic batching, versions with labels and a canary split, request logging and Prometheus
metrics. Start it with `neurona serve --model-base-path DIR` (or `python -m neurona.serving`),
or from Python:

    from neurona.serving import ModelServer, Client
    with ModelServer(model_base_path="models", rest_port=0, grpc_port=0) as server:
        print(Client(server.url).predict("fashion", x[:2]))

Needs the `serving` extra (fastapi, uvicorn, grpcio, prometheus-client, httpx, pyyaml);
`import neurona` never imports this package. docs/serving.md is the manual.
May import: neurona.serving.* (and through them numpy, fastapi, uvicorn, grpcio, protobuf,
prometheus_client, httpx, pyyaml), neurona.models.
"""
from .batching import Batcher
from .client import Client, ServerError
from .config import BatchingConfig, ModelConfig, load_model_config
from .protocol import InvalidInput, NotFound, Overloaded, ServingError, Unavailable
from .server import ModelServer

__all__ = ["Batcher", "BatchingConfig", "Client", "InvalidInput", "ModelConfig", "ModelServer", "NotFound",
           "Overloaded", "ServerError", "ServingError", "Unavailable", "load_model_config"]
