"""The server as a real process (`python -m neurona.serving`): SIGTERM drains the requests in
flight (they are answered, then the process exits 0), and `--workers 2` serves REST and gRPC on
one port pair from two processes."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402

from neurona.layers import Dense  # noqa: E402
from neurona.models import Sequential  # noqa: E402


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(base, *args):
    rest, grpc_port = _free_port(), _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "neurona.serving", "--model-base-path", str(base),
                             "--host", "127.0.0.1", "--rest-port", str(rest), "--grpc-port", str(grpc_port),
                             "--poll-seconds", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{rest}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return proc, url, grpc_port
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"server did not start: {proc.communicate()[1].decode()[-2000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    Sequential([Dense(3, input_dim=4)]).save(base / "m" / "1")
    return base


def test_sigterm_drains_requests_in_flight(base):
    # requests wait up to 3 s for a batch that never fills: they are in flight when SIGTERM comes
    proc, url, _ = _start(base, "--enable-batching", "--max-batch-size", "64", "--batch-timeout-micros", "3000000")
    try:
        body = {"instances": np.ones((1, 4)).tolist()}
        with ThreadPoolExecutor(4) as pool:
            futs = [pool.submit(httpx.post, f"{url}/v1/models/m:predict", json=body, timeout=60) for _ in range(4)]
            deadline = time.monotonic() + 30
            while 'neurona_serving_queue_depth{model="m",version="1"} 4.0' not in httpx.get(f"{url}/metrics").text:
                assert time.monotonic() < deadline, "requests never queued"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            answers = [f.result(60) for f in futs]
        assert [r.status_code for r in answers] == [200] * 4
        assert proc.wait(60) == 0
        logs = [json.loads(line) for line in proc.stderr.read().decode().splitlines() if line.startswith("{")]
        assert any(rec["message"] == "drained" for rec in logs), logs
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.slow
def test_two_workers_share_the_ports(base):
    proc, url, grpc_port = _start(base, "--workers", "2")
    try:
        from neurona.serving import Client

        with Client(url, grpc_address=f"127.0.0.1:{grpc_port}") as c:
            x = np.ones((2, 4), np.float32)
            rest = c.predict("m", x)
            out, _ = c.infer("m", {"input": x}, protocol="grpc")
            np.testing.assert_allclose(out["output"], rest, rtol=1e-6)
            for _ in range(20):
                c.predict("m", x)
            text = c.metrics()
        # multiprocess metrics: the counts of both workers, summed
        line = next(l for l in text.splitlines()
                    if l.startswith('neurona_serving_requests_total{model="m",protocol="rest-tf",status="200"'))
        assert float(line.split()[-1]) == 21
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
