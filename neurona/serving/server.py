"""`ModelServer`: the repository, the REST app on uvicorn and the gRPC server, started and stopped
together. `run()` serves in the foreground (SIGTERM/SIGINT drain: no new connections, in-flight
requests and queued batches finish, then the process exits); `start()`/`stop()` serve from a
background thread (tests, notebooks, examples). `workers > 1` runs that many processes on the
same ports (uvicorn's workers for REST, SO_REUSEPORT for gRPC), each with its own copy of the
models; /metrics then sums over them through prometheus-client's multiprocess mode.
May import: uvicorn, fastapi, grpcio, threadpoolctl, neurona.serving.(config, repository, core, rest,
grpc_service, metrics, reqlog).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from .config import BatchingConfig, ModelConfig, load_model_config

log = logging.getLogger("neurona.serving")
_WORKER_ENV = "NEURONA_SERVING_WORKER"


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message and the record's extra fields."""
    _STD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def format(self, record):
        d = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname, "logger": record.name,
             "message": record.getMessage()}
        d.update({k: v for k, v in vars(record).items() if k not in self._STD})
        if record.exc_info:
            d["exception"] = self.formatException(record.exc_info)
        return json.dumps(d, default=str)


def configure_logging(level="INFO"):
    """Structured (JSON lines) logs of neurona.serving on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("neurona.serving")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def models_from_base_path(base_path, batching: BatchingConfig | None = None, version_policy=("latest", 1)):
    """One ModelConfig per subfolder of `base_path` (`base_path/<model>/<version>/`)."""
    base = Path(base_path)
    if not base.is_dir():
        raise FileNotFoundError(f"--model-base-path {base} is not a folder")
    models = [ModelConfig(name=p.name, base_path=str(p), batching=batching, version_policy=version_policy)
              for p in sorted(base.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    if not models:
        raise ValueError(f"{base} holds no model folder (expected {base}/<model>/<version>/)")
    return models


class ModelServer:
    """Serve neurona models over TF Serving REST, KServe V2 REST and KServe V2 gRPC.

    models: ModelConfigs, or give `model_base_path` (every subfolder is a model) or
    `model_config_file` (JSON/YAML, re-read when it changes). `rest_port`/`grpc_port`: 0 picks a
    free port (read `server.rest_port` after `start()`); grpc_port=None serves no gRPC.
    `blas_threads`: limit NumPy's BLAS to that many threads in this process once serving starts
    (the CLI's default is 1; None leaves it alone).
    """

    def __init__(self, models=None, *, model_base_path=None, model_config_file=None, batching=None,
                 host="127.0.0.1", rest_port=8501, grpc_port=8500, request_timeout_s=30.0,
                 max_request_bytes=64 * 2**20, auth_token=None, tls_certfile=None, tls_keyfile=None,
                 poll_seconds=1.0, request_log=None, log_sample_rate=1.0, grpc_threads=16,
                 max_concurrent_rpcs=256, drain_seconds=30.0, workers=1, access_log=False, blas_threads=None):
        if sum(x is not None for x in (models, model_base_path, model_config_file)) != 1:
            raise ValueError("ModelServer: give exactly one of models=, model_base_path=, model_config_file=")
        if (tls_certfile is None) != (tls_keyfile is None):
            raise ValueError("ModelServer: TLS needs both tls_certfile and tls_keyfile")
        self.settings = dict(model_base_path=model_base_path, model_config_file=model_config_file,
                             batching=None if batching is None else vars(batching), host=host, rest_port=rest_port,
                             grpc_port=grpc_port, request_timeout_s=request_timeout_s,
                             max_request_bytes=max_request_bytes, auth_token=auth_token, tls_certfile=tls_certfile,
                             tls_keyfile=tls_keyfile, poll_seconds=poll_seconds, request_log=request_log,
                             log_sample_rate=log_sample_rate, grpc_threads=grpc_threads,
                             max_concurrent_rpcs=max_concurrent_rpcs, drain_seconds=drain_seconds, workers=workers,
                             access_log=access_log, blas_threads=blas_threads)
        if model_config_file is not None:
            self.model_configs = load_model_config(model_config_file)
        elif model_base_path is not None:
            self.model_configs = models_from_base_path(model_base_path, batching)
        else:
            self.model_configs = list(models)
        self.host, self.rest_port, self.grpc_port = host, rest_port, grpc_port
        self.scheme = "https" if tls_certfile else "http"
        self.workers = workers
        self._thread = self._uvicorn = None
        self.app = None if workers > 1 else self._build()

    def _build(self):
        from .core import InferenceCore
        from .metrics import ServingMetrics
        from .reqlog import RequestLogger
        from .repository import Repository
        from .rest import build_app

        s = self.settings
        self.metrics = ServingMetrics()
        self.repository = Repository(self.model_configs, poll_seconds=s["poll_seconds"],
                                     config_path=s["model_config_file"], metrics=self.metrics)
        reqlog = RequestLogger(s["request_log"], s["log_sample_rate"]) if s["request_log"] else None
        self.core = InferenceCore(self.repository, self.metrics, reqlog, s["request_timeout_s"])
        self._grpc = None

        @contextlib.asynccontextmanager
        async def lifespan(app):
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(self._start_backend)
            try:
                yield
            finally:
                await run_in_threadpool(self._stop_backend)

        return build_app(self.core, max_request_bytes=s["max_request_bytes"], auth_token=s["auth_token"],
                         lifespan=lifespan)

    def _start_backend(self):
        s = self.settings
        if s["blas_threads"]:
            # Process-wide on purpose (a serving process): parallelism comes from the batch threads
            # and requests; multi-threaded BLAS under them oversubscribes the cores (see
            # docs/serving.md, "Load test").
            from threadpoolctl import threadpool_limits

            threadpool_limits(s["blas_threads"], user_api="blas")
        self.repository.start()
        if self.grpc_port is not None:
            from .grpc_service import build_grpc_server

            tls = None
            if s["tls_certfile"]:
                tls = (Path(s["tls_certfile"]).read_bytes(), Path(s["tls_keyfile"]).read_bytes())
            self._grpc, self.grpc_port = build_grpc_server(
                self.core, f"{self.host}:{self.grpc_port}", threads=s["grpc_threads"],
                max_concurrent_rpcs=s["max_concurrent_rpcs"], max_message_bytes=s["max_request_bytes"],
                auth_token=s["auth_token"], tls=tls)
            self._grpc.start()
        log.info("serving", extra={"rest": f"{self.host}:{self.rest_port}", "grpc": self.grpc_port,
                                   "models": {m.name: sorted(m.versions) for m in self.repository.models.values()},
                                   "pid": os.getpid()})

    def _stop_backend(self):
        """The drain: refuse new inferences, let gRPC finish its in-flight calls, finish the queued
        batches, close the request log."""
        t0 = time.perf_counter()
        self.core.draining = True
        if self._grpc is not None:
            self._grpc.stop(self.settings["drain_seconds"]).wait()
        self.repository.close()
        if self.core.request_log is not None:
            self.core.request_log.close()
        log.info("drained", extra={"seconds": round(time.perf_counter() - t0, 3), "pid": os.getpid()})

    def _uvicorn_settings(self):
        s = self.settings
        return dict(host=self.host, port=self.rest_port, log_level="warning", lifespan="on",
                    access_log=s["access_log"], timeout_graceful_shutdown=s["drain_seconds"],
                    ssl_certfile=s["tls_certfile"], ssl_keyfile=s["tls_keyfile"])

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.rest_port}"

    def run(self):
        """Serve in the foreground until SIGTERM/SIGINT, then drain and return."""
        import uvicorn

        if self.workers > 1:
            os.environ[_WORKER_ENV] = json.dumps(self.settings | {"model_configs": [
                {**vars(m), "batching": None if m.batching is None else vars(m.batching)} for m in self.model_configs]})
            if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="neurona-metrics-")
            uvicorn.run("neurona.serving.server:_worker_app", factory=True, workers=self.workers,
                        **self._uvicorn_settings())
            return
        # uvicorn drains on SIGTERM/SIGINT, then re-raises the signal under the handler it found:
        # this one, so that a drained server exits with status 0 (and one stopped while still
        # loading its models exits at once).
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _exit_quietly)
        uvicorn.Server(uvicorn.Config(self.app, **self._uvicorn_settings())).run()

    def start(self, timeout=120.0):
        """Serve from a background thread; returns once the models are loaded and both ports
        listen."""
        import uvicorn

        if self.workers > 1:
            raise ValueError("ModelServer.start: several workers need run() (a foreground process)")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.rest_port))
        self.rest_port = sock.getsockname()[1]
        self._uvicorn = uvicorn.Server(uvicorn.Config(self.app, **self._uvicorn_settings()))
        self._thread = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [sock]},
                                        name="neurona-serving", daemon=True)
        self._thread.start()
        end = time.monotonic() + timeout
        while not self._uvicorn.started:
            if not self._thread.is_alive():
                raise RuntimeError("ModelServer.start: the server stopped during startup (see the log)")
            if time.monotonic() > end:
                self.stop()
                raise TimeoutError(f"ModelServer.start: not up after {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self):
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
            self._thread.join()
            self._uvicorn = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _exit_quietly(signum, frame):
    raise SystemExit(0)


def _worker_app():
    """The app of one `--workers` process, rebuilt from the settings the parent left in the
    environment."""
    from .config import model_config_from_dict

    s = json.loads(os.environ[_WORKER_ENV])
    models = None
    dicts = s.pop("model_configs")
    if s["model_config_file"] is None and s["model_base_path"] is None:
        models = []
        for d in dicts:
            kind, arg = d.pop("version_policy")
            d["model_version_policy"] = {kind: {"num_versions": arg} if kind == "latest" else
                                         {"versions": arg} if kind == "specific" else {}}
            models.append(model_config_from_dict(d))
    batching = s.pop("batching")
    s["workers"] = 1
    configure_logging()
    server = ModelServer(models, batching=None if batching is None else BatchingConfig(**batching), **s)
    return server.app
