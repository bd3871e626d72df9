"""`neurona serve` / `python -m neurona.serving`: the command-line options of the model server and
the function that runs it. `neurona.cli` registers them as its `serve` subcommand.
May import: argparse, os, neurona.serving.config, neurona.serving.server.
"""
from __future__ import annotations

import argparse
import os
import sys

HELP = "serve saved models over TF Serving REST and KServe V2 REST/gRPC"


def add_arguments(p):
    """The options of `neurona serve` (and `python -m neurona.serving`)."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model-base-path", help="folder in TF Serving's layout: DIR/<model>/<integer version>/")
    src.add_argument("--model-config", help="a JSON or YAML model_config_list file (several models, labels, "
                                            "canary weights, per-model batching); re-read when it changes")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--rest-port", type=int, default=8501, help="REST port (default 8501, as TF Serving)")
    p.add_argument("--grpc-port", type=int, default=8500, help="gRPC port (default 8500); -1 disables gRPC")
    p.add_argument("--workers", type=int, default=1, help="server processes sharing the ports (default 1)")
    b = p.add_argument_group("dynamic batching (for --model-base-path; --model-config sets it per model)")
    b.add_argument("--enable-batching", action="store_true")
    b.add_argument("--max-batch-size", type=int, default=32)
    b.add_argument("--batch-timeout-micros", type=int, default=1000)
    b.add_argument("--num-batch-threads", type=int, default=1)
    b.add_argument("--max-enqueued-batches", type=int, default=64)
    p.add_argument("--blas-threads", type=int, default=1,
                   help="threads of NumPy's BLAS per prediction (default 1: batch threads and requests give "
                        "the parallelism; 0 leaves BLAS alone)")
    p.add_argument("--poll-seconds", type=float, default=1.0, help="how often to look for new versions (0: never)")
    p.add_argument("--request-timeout", type=float, default=30.0, help="seconds a request may take at most")
    p.add_argument("--max-request-bytes", type=int, default=64 * 2**20)
    p.add_argument("--request-log", help="append sampled requests/responses to this JSON-lines file")
    p.add_argument("--log-sample-rate", type=float, default=1.0, help="share of requests logged (default 1)")
    p.add_argument("--auth-token", help="require 'Authorization: Bearer TOKEN' (also env NEURONA_SERVING_TOKEN)")
    p.add_argument("--tls-certfile", help="PEM certificate: serve HTTPS and gRPC over TLS")
    p.add_argument("--tls-keyfile", help="PEM private key of --tls-certfile")
    p.add_argument("--drain-seconds", type=float, default=30.0, help="how long SIGTERM waits for in-flight requests")
    p.add_argument("--access-log", action="store_true", help="log every HTTP request (uvicorn's access log)")
    p.add_argument("--log-level", default="INFO")


def run(args) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status."""
    from .config import BatchingConfig
    from .server import ModelServer, configure_logging

    configure_logging(args.log_level)
    batching = None
    if args.enable_batching:
        batching = BatchingConfig(max_batch_size=args.max_batch_size, batch_timeout_micros=args.batch_timeout_micros,
                                  num_batch_threads=args.num_batch_threads,
                                  max_enqueued_batches=args.max_enqueued_batches)
    server = ModelServer(model_base_path=args.model_base_path, model_config_file=args.model_config, batching=batching,
                         host=args.host, rest_port=args.rest_port,
                         grpc_port=None if args.grpc_port < 0 else args.grpc_port, workers=args.workers,
                         poll_seconds=args.poll_seconds, request_timeout_s=args.request_timeout,
                         max_request_bytes=args.max_request_bytes, request_log=args.request_log,
                         log_sample_rate=args.log_sample_rate,
                         auth_token=args.auth_token or os.environ.get("NEURONA_SERVING_TOKEN"),
                         tls_certfile=args.tls_certfile, tls_keyfile=args.tls_keyfile,
                         drain_seconds=args.drain_seconds, access_log=args.access_log,
                         blas_threads=args.blas_threads or None)
    server.run()
    return 0


def main(argv=None) -> int:
    """`python -m neurona.serving ...`: the same options as `neurona serve ...`."""
    parser = argparse.ArgumentParser(prog="python -m neurona.serving", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
