"""W9's server side without sockets: the CPU one request costs in neurona's REST app. The app of
`neurona serve` (the W9 model, without or with dynamic batching) is driven in this process through
its ASGI interface by `--concurrency` tasks, each sending the W9 body (one 1x28x28 image, TF
Serving row format) to `/v1/models/w2:predict`; prints the process CPU per request (event loop and
batch threads together) and, for scale, one prediction at batch 1 alone. No HTTP parsing, no
client, no uvicorn: what is left is the app's own work (routing, body, JSON, checks, queue,
prediction, metrics, answer), the part of `server_cpu_ms_per_request` that neurona's code decides.

    python -m benchmarks.serve_app                  # no batching, then batching (32 rows, 2,000 us)
    python -m benchmarks.serve_app --requests 5000 --profile   # + cProfile of the event loop thread
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def measure(folder, batching, requests, concurrency, profile=False):
    from neurona.serving.config import BatchingConfig
    from neurona.serving.server import ModelServer

    srv = ModelServer(model_base_path=str(folder), rest_port=0, grpc_port=None, poll_seconds=0, blas_threads=1,
                      batching=BatchingConfig(max_batch_size=32, batch_timeout_micros=2000) if batching else None)
    srv._start_backend()  # what the app's lifespan does: load the models, start the batchers
    try:
        app = srv.app
        x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
        body = json.dumps({"instances": x.tolist()}).encode()
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/models/w2:predict", "raw_path": b"/v1/models/w2:predict",
                 "root_path": "", "query_string": b"", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
                 "headers": [(b"host", b"x"), (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())]}

        async def one():
            messages, sent = [{"type": "http.request", "body": body, "more_body": False}], []

            async def receive():
                return messages.pop() if messages else {"type": "http.disconnect"}

            async def send(message):
                sent.append(message)
            await app(dict(scope), receive, send)
            if sent[0]["status"] != 200:
                raise RuntimeError(f"status {sent[0]['status']}: {sent[1].get('body', b'')[:200]!r}")

        async def run(n):
            async def worker():
                for _ in range(n // concurrency):
                    await one()
            await asyncio.gather(*(worker() for _ in range(concurrency)))

        asyncio.run(run(concurrency * 20))  # warm-up
        prof = cProfile.Profile() if profile else None
        n = requests // concurrency * concurrency
        c0, t0 = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        asyncio.run(run(n))
        if prof:
            prof.disable()
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        lv = srv.repository.get("w2").resolve()
        c1 = time.process_time()
        for _ in range(300):
            lv.predict([x])
        predict = (time.process_time() - c1) / 300
        print(json.dumps({"workload": "W9-app", "batching": batching, "requests": n, "concurrency": concurrency,
                          "cpu_ms_per_request": round(cpu / n * 1e3, 3),
                          "requests_per_s_one_process": round(n / wall, 1),
                          "predict_batch_1_ms": round(predict * 1e3, 3),
                          "loadavg_1min": round(os.getloadavg()[0], 2)}), flush=True)
        if prof:
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    finally:
        srv._stop_backend()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--profile", action="store_true", help="cProfile the event loop thread (wall times)")
    args = p.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from benchmarks.serve_load import build_neurona

    threadpool_limits(1, user_api="blas")
    tmp = Path(tempfile.mkdtemp(prefix="w9-app-"))
    build_neurona(tmp / "w2" / "1")
    for batching in (False, True):
        measure(tmp, batching, args.requests, args.concurrency, args.profile)


if __name__ == "__main__":
    sys.exit(main())
