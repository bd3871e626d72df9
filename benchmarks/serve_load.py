"""W9: serving load test. A W2-sized CNN (LeNet-5-like on 1x28x28) behind neurona's server --
without and with dynamic batching -- and the same network (same weights) in PyTorch behind a
plain FastAPI endpoint; 32 concurrent closed-loop clients on loopback for 20 s each, one image per
request in TF Serving's row format (`{"instances": [image]}` -> `{"predictions": [...]}`) on every
side. Prints one JSON line per side (requests/s, p50/p99 latency in ms, errors) and the ratios.

    python -m benchmarks.serve_load                     # 20 s per side (W9 of docs/performance.md)
    python -m benchmarks.serve_load --seconds 5         # a quick look
    python -m benchmarks.serve_load --forward           # the forward pass alone, batch 1/8/32, 1 thread
    python -m benchmarks.serve_load --rounds 3          # three alternating rounds, medians
    python -m benchmarks.serve_load --client httpx      # the load generator of the first W9 figures

Each server runs in its own process with uvicorn (1 worker) and may use every core; the load
generator runs in this process on the same machine, so both compete for the same cores: the
figures are for loopback on this machine, with the load noted (os.getloadavg). Its default
client is a plain asyncio HTTP/1.1 stream per client with one prepared request (about 0.07 ms of
CPU per request, printed as client_cpu_ms_per_request), so nearly all the CPU goes to the server
under test; httpx.AsyncClient costs ~5 ms per request, and on 2 cores it, not the server, set the
first W9 figures. The same client, model, weights, body and cores serve every side.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def build_neurona(path):
    import neurona as nr
    from neurona.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from neurona.models import Sequential

    nr.manual_seed(0)
    m = Sequential([Conv2D(6, 5, padding="same", activation="relu", input_shape=(1, 28, 28)), MaxPooling2D(2),
                    Conv2D(16, 5, activation="relu"), MaxPooling2D(2), Flatten(),
                    Dense(120, activation="relu"), Dense(84, activation="relu"), Dense(10)])
    m.save(path)
    return m


def torch_model(neurona_folder):
    """The same network in PyTorch with the weights of the saved neurona model."""
    import torch

    from neurona.models import load_model

    weights = [w.numpy() for w in load_model(neurona_folder, compile=False).weights]  # kernel, bias per layer
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
                              torch.nn.Linear(84, 10))
    with torch.no_grad():
        for i, (k, b) in zip((0, 3, 7, 9, 11), zip(weights[::2], weights[1::2])):
            net[i].weight.copy_(torch.from_numpy(k.T.copy() if k.ndim == 2 else k))  # Dense keeps (in, out)
            net[i].bias.copy_(torch.from_numpy(b))
    return net.eval()


def peer_server(folder, port, threads=0):
    """The peer: PyTorch eager under torch.no_grad in a plain FastAPI endpoint (sync handler,
    FastAPI's thread pool), uvicorn, one process; `threads` intra-op threads (0: every core)."""
    import torch
    import uvicorn
    from fastapi import FastAPI

    torch.set_num_threads(threads or os.cpu_count())
    net = torch_model(folder)
    app = FastAPI()

    @app.post("/v1/models/w2:predict")
    def predict(body: dict):
        x = torch.tensor(body["instances"], dtype=torch.float32)
        with torch.no_grad():
            return {"predictions": net(x).tolist()}
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def forward_times(model, net, reps=15):
    """Min over `reps` of one forward pass at batch 1, 8, 32, one thread each: neurona the way
    `neurona serve` runs it (LoadedVersion.predict: predict_step under no_grad, BLAS on 1 thread,
    the CLI's --blas-threads default), PyTorch under no_grad with torch.set_num_threads(1);
    interleaved."""
    import torch
    from threadpoolctl import threadpool_limits

    from neurona.serving.repository import LoadedVersion

    torch.set_num_threads(1)
    threadpool_limits(1, user_api="blas")
    lv = LoadedVersion("w2", 1, None, model, None, 64)
    x = np.random.default_rng(0).random((32, 1, 28, 28), dtype=np.float32)
    best = {}
    try:
        with torch.no_grad():
            for _ in range(reps):
                for bs in (1, 8, 32):
                    for side, run in (("neurona", lambda: lv.predict([x[:bs]])),
                                      ("torch", lambda: net(torch.from_numpy(x[:bs])))):
                        t0 = time.perf_counter()
                        run()
                        best[side, bs] = min(best.get((side, bs), 1e9), time.perf_counter() - t0)
    finally:
        lv.close()
    for side in ("neurona", "torch"):
        print(json.dumps({"workload": "W9-forward", "side": side, "unit": "ms (min of %d)" % reps,
                          **{f"batch_{bs}": round(best[side, bs] * 1e3, 2) for bs in (1, 8, 32)},
                          "loadavg_1min": round(os.getloadavg()[0], 2)}))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url, proc, path):
    import httpx

    end = time.monotonic() + 180
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + path, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise TimeoutError(url)


async def _raw_client(host, port, request, stop, begin, lat, errors, total):
    """One closed-loop client on its own keep-alive connection: writes the prepared request bytes,
    reads the status line and headers, then exactly Content-Length bytes of body (both servers
    answer with a Content-Length; anything else fails loudly)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = None
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length is None:
                raise RuntimeError(f"answer without Content-Length: {head[:200]!r}")
            await reader.readexactly(length)
            t1 = time.perf_counter()
            total[0] += 1
            if t0 >= begin:
                if head[9:12] == b"200":
                    lat.append(t1 - t0)
                else:
                    errors[0] += 1
    finally:
        writer.close()


async def _httpx_client(c, body, stop, begin, lat, errors, total):
    while True:
        t0 = time.perf_counter()
        if t0 >= stop:
            return
        r = await c.post("/v1/models/w2:predict", content=body, headers={"content-type": "application/json"})
        t1 = time.perf_counter()
        total[0] += 1
        if t0 >= begin:
            if r.status_code == 200:
                lat.append(t1 - t0)
            else:
                errors[0] += 1


async def _load(url, body, clients, seconds, warmup, client="raw"):
    """`clients` closed-loop clients for `warmup` + `seconds`; latencies of the requests started
    after the warm-up. client="raw": each client a plain asyncio stream speaking HTTP/1.1 with one
    prepared request (~0.07 ms of CPU per request, so the 2 cores go to the server under test);
    client="httpx": httpx.AsyncClient (~5 ms of CPU per request: on 2 cores the load generator,
    not the server, then sets the throughput -- the figures before 2026-12-03 were taken so)."""
    lat, errors, total = [], [0], [0]
    begin = time.perf_counter() + warmup
    stop = begin + seconds
    if client == "raw":
        host, port = url.split("//", 1)[1].rsplit(":", 1)
        request = (b"POST /v1/models/w2:predict HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n" % (host.encode(), len(body))) + body
        await asyncio.gather(*(_raw_client(host, int(port), request, stop, begin, lat, errors, total)
                               for _ in range(clients)))
    else:
        import httpx

        async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(
                max_connections=clients, max_keepalive_connections=clients)) as c:
            await asyncio.gather(*(_httpx_client(c, body, stop, begin, lat, errors, total) for _ in range(clients)))
    lat = np.asarray(lat) * 1e3
    return {"requests_per_s": round(len(lat) / seconds, 1), "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2), "requests": int(len(lat)), "errors": errors[0],
            "all_requests": total[0]}


def _cpu_seconds(pid):
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_side(name, cmd, url, check_path, body, args, env):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        _wait(url, proc, check_path)
        load_before, cpu_before, client_before = os.getloadavg()[0], _cpu_seconds(proc.pid), time.process_time()
        res = asyncio.run(_load(url, body, args.clients, args.seconds, args.warmup, args.client))
        # CPU the server spent per request: a cost that contention for the cores barely changes
        n = max(1, res.pop("all_requests"))
        cpu_ms = (_cpu_seconds(proc.pid) - cpu_before) * 1e3 / n
        client_ms = (time.process_time() - client_before) * 1e3 / n
        res = {"side": name, **res, "server_cpu_ms_per_request": round(cpu_ms, 3),
               "client_cpu_ms_per_request": round(client_ms, 3),
               "loadavg_1min_before": round(load_before, 2),
               "loadavg_1min_after": round(os.getloadavg()[0], 2)}
        print(json.dumps(res), flush=True)
        return res
    finally:
        proc.terminate()
        proc.wait(60)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--batch-timeout-micros", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=1,
                   help="run the three sides this many times, alternating their order; report the medians")
    p.add_argument("--sides", default="neurona,neurona_batched,peer",
                   help="which of neurona, neurona_batched, peer to run (comma-separated)")
    p.add_argument("--peer-threads", type=int, default=0,
                   help="PyTorch intra-op threads of the peer (torch.set_num_threads; default 0: every core)")
    p.add_argument("--client", choices=("raw", "httpx"), default="raw",
                   help="load generator: plain asyncio HTTP/1.1 streams (default) or httpx.AsyncClient")
    p.add_argument("--forward", action="store_true", help="time the forward pass alone (min of 15) and stop")
    p.add_argument("--peer-server", nargs=2, metavar=("FOLDER", "PORT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.peer_server:
        return peer_server(args.peer_server[0], int(args.peer_server[1]), args.peer_threads)

    import torch

    tmp = Path(tempfile.mkdtemp(prefix="w9-"))
    model = build_neurona(tmp / "w2" / "1")
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    ref = model.predict(x)
    with torch.no_grad():
        peer_out = torch_model(tmp / "w2" / "1")(torch.from_numpy(x)).numpy()
    assert np.allclose(ref, peer_out, rtol=1e-4, atol=1e-5), "the two sides compute different functions"
    if args.forward:
        return forward_times(model, torch_model(tmp / "w2" / "1"))
    body = json.dumps({"instances": x.tolist()}).encode()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    print(json.dumps({"workload": "W9", "machine": platform.processor() or platform.machine(),
                      "cores": os.cpu_count(), "clients": args.clients, "seconds": args.seconds,
                      "python": platform.python_version(), "torch": torch.__version__}), flush=True)
    serve = [sys.executable, "-m", "neurona.serving", "--model-base-path", str(tmp), "--host", "127.0.0.1",
             "--grpc-port", "-1", "--poll-seconds", "0", "--log-level", "WARNING"]
    batching = ["--enable-batching", "--max-batch-size", str(args.max_batch_size),
                "--batch-timeout-micros", str(args.batch_timeout_micros)]
    sides = {"neurona": ("neurona (no batching)", serve, "/v2/health/ready"),
             "neurona_batched": (f"neurona (batching {args.max_batch_size}, {args.batch_timeout_micros} us)",
                                 serve + batching, "/v2/health/ready"),
             "peer": (f"FastAPI + torch {torch.__version__.split('+')[0]} eager",
                      [sys.executable, "-m", "benchmarks.serve_load", "--peer-threads", str(args.peer_threads),
                       "--peer-server", str(tmp / "w2" / "1")], "/docs")}
    sides = {k: v for k, v in sides.items() if k in args.sides.split(",")}
    runs = {k: [] for k in sides}
    for r in range(args.rounds):
        # alternate: every round runs the three sides, in reversed order every other round
        for key in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            name, cmd, check = sides[key]
            port = _free_port()
            cmd = cmd + (["--rest-port", str(port)] if key != "peer" else [str(port)])
            runs[key].append(run_side(name, cmd, f"http://127.0.0.1:{port}", check, body, args, env))
    med = {k: float(np.median([x["requests_per_s"] for x in v])) for k, v in runs.items()}
    summary = {"workload": "W9", "unit": "requests/s", "rounds": args.rounds, "client": args.client,
               "median_requests_per_s": med}
    if "peer" in med:
        for key, label in (("neurona", "ratio_no_batching"), ("neurona_batched", "ratio_batching")):
            if key in med:
                summary[label] = round(med[key] / med["peer"], 3)
        summary["note"] = "ratio = neurona / peer throughput (higher is better), medians over rounds"
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    sys.exit(main())
