"""Dynamic batching: concurrent requests coalesce into one prediction, the batch timeout is kept,
a full queue is refused at once (429 / RESOURCE_EXHAUSTED) and the server recovers, a passed
deadline answers 503 / UNAVAILABLE, and closing drains the queue."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("fastapi")
import grpc  # noqa: E402
import httpx  # noqa: E402

from neurona.layers import Dense  # noqa: E402
from neurona.models import Sequential  # noqa: E402
from neurona.serving import (Batcher, BatchingConfig, Client, ModelConfig, ModelServer, Overloaded,  # noqa: E402
                             Unavailable)
from neurona.serving import protocol as P  # noqa: E402


def _recording(delay=0.0, gate=None):
    calls = []

    def fn(xs):
        calls.append(len(xs[0]))
        if gate is not None:
            gate.wait(10)
        time.sleep(delay)
        return [xs[0] * 2]
    return fn, calls


def test_concurrent_requests_coalesce_and_get_their_own_rows():
    fn, calls = _recording()
    b = Batcher(fn, BatchingConfig(max_batch_size=8, batch_timeout_micros=2_000_000))
    try:
        futs = [b.submit([np.full((1, 2), i, np.float32)]) for i in range(8)]
        outs = [f.result(10)[0] for f in futs]
    finally:
        b.close()
    assert calls == [8]  # the 8th row filled the batch: one prediction, no waiting for the timeout
    for i, o in enumerate(outs):
        np.testing.assert_array_equal(o, np.full((1, 2), 2 * i))


def test_batch_timeout_is_kept():
    fn, calls = _recording()
    b = Batcher(fn, BatchingConfig(max_batch_size=8, batch_timeout_micros=200_000))
    try:
        t0 = time.monotonic()
        b.submit([np.ones((3, 2))]).result(10)
        waited = time.monotonic() - t0
    finally:
        b.close()
    assert calls == [3] and 0.19 <= waited < 5


@pytest.mark.parametrize("threads", [1, 3])
def test_full_batches_run_at_once_with_many_submitters(threads):
    # 16 closed-loop submitters of one row each, batches of 8, a 5 s timeout: every batch fills, so
    # no request may wait for the timeout (a batch thread must be woken as the 8th row arrives),
    # and every request gets its own rows, whatever the interleaving of submitters and threads
    fn, calls = _recording()
    b = Batcher(fn, BatchingConfig(max_batch_size=8, batch_timeout_micros=5_000_000, num_batch_threads=threads))

    def one(i):
        t0 = time.monotonic()
        out = b.submit([np.full((1, 2), i, np.float32)]).result(30)[0]
        return out, time.monotonic() - t0
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(one, range(400)))
    finally:
        b.close()
    for i, (out, waited) in enumerate(results):
        np.testing.assert_array_equal(out, np.full((1, 2), 2 * i))
    assert max(waited for _, waited in results) < 4
    assert calls == [8] * 50


def test_full_queue_refused_at_once_then_recovers():
    gate = threading.Event()
    fn, calls = _recording(gate=gate)
    b = Batcher(fn, BatchingConfig(max_batch_size=2, batch_timeout_micros=0, max_enqueued_batches=1))
    try:
        running = b.submit([np.ones((2, 1))])  # taken by the batch thread, which blocks on the gate
        while b.depth:
            time.sleep(0.001)
        queued = b.submit([np.ones((2, 1))])  # fills the queue (2 rows)
        t0 = time.monotonic()
        with pytest.raises(Overloaded, match="queue is full"):
            b.submit([np.ones((1, 1))])
        assert time.monotonic() - t0 < 0.5
        gate.set()
        running.result(10), queued.result(10)
        assert b.submit([np.ones((1, 1))]).result(10)[0].tolist() == [[2.0]]
    finally:
        gate.set()
        b.close()


def test_passed_deadline_and_close_drain():
    gate = threading.Event()
    fn, calls = _recording(gate=gate)
    b = Batcher(fn, BatchingConfig(max_batch_size=1, batch_timeout_micros=0, max_enqueued_batches=8))
    first = b.submit([np.ones((1, 1))])
    late = b.submit([np.ones((1, 1))], deadline=time.monotonic() + 0.05)
    kept = b.submit([np.ones((1, 1))])
    time.sleep(0.1)
    gate.set()
    closer = threading.Thread(target=b.close)
    closer.start()
    with pytest.raises(Unavailable, match="deadline passed"):
        late.result(10)
    assert first.result(10)[0].tolist() == [[2.0]] and kept.result(10)[0].tolist() == [[2.0]]  # drained
    closer.join(10)
    with pytest.raises(Unavailable, match="shutting down"):
        b.submit([np.ones((1, 1))])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    Sequential([Dense(3, input_dim=4)]).save(base / "m" / "1")
    return base


def _batch_stats(text):
    count = total = 0.0
    for line in text.splitlines():
        if line.startswith('neurona_serving_batch_size_count{model="b"'):
            count = float(line.split()[-1])
        if line.startswith('neurona_serving_batch_size_sum{model="b"'):
            total = float(line.split()[-1])
    return count, total


def test_server_coalesces_concurrent_requests(base):
    cfg = ModelConfig("b", str(base / "m"), batching=BatchingConfig(max_batch_size=8, batch_timeout_micros=1_500_000))
    with ModelServer([cfg], rest_port=0, grpc_port=None, poll_seconds=0) as srv:
        x = np.random.default_rng(0).random((8, 4), dtype=np.float32)
        want = srv.repository.get("b").versions[1].model.predict(x)
        with ThreadPoolExecutor(8) as pool:
            rs = list(pool.map(lambda i: httpx.post(f"{srv.url}/v1/models/b:predict",
                                                    json={"instances": x[i:i + 1].tolist()}, timeout=30), range(8)))
        for i, r in enumerate(rs):
            np.testing.assert_allclose(r.json()["predictions"], want[i:i + 1], rtol=1e-5)
        count, total = _batch_stats(httpx.get(f"{srv.url}/metrics").text)
        assert total == 8 and count < 8, (count, total)  # fewer predictions than requests


def test_server_overload_429_and_deadline_503_then_recovers(base):
    # each 3-row request waits up to 2 s for a 4-row batch; the queue holds one batch (4 rows)
    cfg = ModelConfig("b", str(base / "m"), batching=BatchingConfig(max_batch_size=4, batch_timeout_micros=2_000_000,
                                                                    max_enqueued_batches=1))
    with ModelServer([cfg], rest_port=0, grpc_port=0, poll_seconds=0, request_timeout_s=5) as srv:
        body = {"instances": np.zeros((3, 4)).tolist()}
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(httpx.post, f"{srv.url}/v1/models/b:predict", json=body, timeout=30)
            while srv.repository.get("b").versions[1].batcher.depth < 3:
                time.sleep(0.005)
            t0 = time.monotonic()
            r = httpx.post(f"{srv.url}/v1/models/b:predict", json=body, timeout=30)
            assert r.status_code == 429 and "queue is full" in r.json()["error"]
            with grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}") as ch:
                req = P.messages()["ModelInferRequest"](model_name="b")
                req.inputs.add(name="input", datatype="FP32", shape=[3, 4])
                req.raw_input_contents.append(np.zeros((3, 4), np.float32).tobytes())
                with pytest.raises(grpc.RpcError) as e:
                    P.GRPCInferenceServiceStub(ch).ModelInfer(req, timeout=30)
                assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert time.monotonic() - t0 < 1.8  # refused at once, not after the batch timeout
            assert first.result(30).status_code == 200
        # recovered
        assert httpx.post(f"{srv.url}/v1/models/b:predict", json=body, timeout=30).status_code == 200
        # a deadline shorter than the batch timeout: 503 (REST, from tritonclient's timeout parameter) / UNAVAILABLE
        t0 = time.monotonic()
        r = httpx.post(f"{srv.url}/v2/models/b/infer", timeout=30, json={
            "parameters": {"timeout": 200_000}, "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                                                            "data": [0.0] * 4}]})
        assert r.status_code == 503 and "deadline" in r.json()["error"] and time.monotonic() - t0 < 1.8
        with Client(srv.url, grpc_address=f"127.0.0.1:{srv.grpc_port}", timeout=0.2) as c:
            with pytest.raises(Exception, match="DEADLINE_EXCEEDED|UNAVAILABLE"):
                c.infer("b", np.zeros((1, 4), np.float32), protocol="grpc")
        text = httpx.get(f"{srv.url}/metrics").text
        assert 'status="429"' in text and 'status="503"' in text
