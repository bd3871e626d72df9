"""neurona.distributed on a real local Ray (2.60): synchronous averaging equals one process with
the global batch, async SGD and Downpour converge and record staleness, workers and
parameter-server shards killed with SIGKILL are survived, pushes are de-duplicated, and bad input
gets a clear error. One small Ray for the module (2 CPUs, 200 MB object store, no dashboard).
"""
import os
import signal
import warnings

import numpy as np
import pytest

ray = pytest.importorskip("ray")  # the [distributed] extra; installed by `make test`

import neurona.distributed as nd  # noqa: E402
from neurona.callbacks import Callback  # noqa: E402
from neurona.layers import Dense  # noqa: E402
from neurona.models import Sequential  # noqa: E402
from neurona.optim import SGD  # noqa: E402

# One Ray per pytest process: with `pytest -n 2 --dist loadgroup` every test here runs in the same
# xdist worker, so Ray starts once (about 15 s on a quiet 2-core machine) instead of twice.
pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module")
def local_ray():
    started = nd.init(num_cpus=2, object_store_memory=200 * 2**20)
    yield
    if started:
        nd.shutdown()


def _problem(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = (x @ rng.normal(size=(8, 3))).argmax(1)
    return x, y


def _model(lr=0.1, momentum=0.9, seed=0):
    import neurona as nr

    nr.manual_seed(seed)
    m = Sequential([Dense(16, input_dim=8, activation="relu"), Dense(3, activation="softmax")])
    m.compile(SGD(lr, momentum=momentum), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


class _At(Callback):
    """Runs `action(strategy)` once, after batch `batch` of epoch `epoch`."""

    def __init__(self, strategy, epoch, batch, action):
        super().__init__()
        self.strategy, self.at, self.action, self.epoch = strategy, (epoch, batch), action, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            self.action(self.strategy)


def _kill_worker(i):
    return lambda s: os.kill(s.pids[i], signal.SIGKILL)


def _kill_shard(i):
    return lambda s: os.kill(nd.cluster.call(s.shards[i].ping.remote(), 30, "ping")["pid"], signal.SIGKILL)


# -- synchronous: equal to one process -------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: nd.ParameterAveraging(2, period=1), lambda: nd.AllReduce(2)],
                         ids=["ParameterAveraging", "AllReduce"])
def test_synchronous_equals_single_process_sgd(local_ray, make):
    """2 workers × batch 16 == one process, batch 32, same samples in the same order (momentum 0.9:
    averaging the weights after one step from the same point is the step of the mean gradient, and
    the mean of the workers' momenta is the momentum of the means)."""
    x, y = _problem()
    dist, single = _model(), _model()
    single.set_weights(dist.get_weights())
    nd.fit(dist, x, y, strategy=make(), epochs=2, batch_size=16, shuffle=False, verbose=0)
    # worker i holds samples [128 i, 128 (i+1)); global step t = worker 0's batch t, then worker 1's
    order = np.concatenate([np.r_[16 * t:16 * (t + 1), 128 + 16 * t:128 + 16 * (t + 1)] for t in range(8)])
    single.fit(x[order], y[order], epochs=2, batch_size=32, shuffle=False, verbose=0)
    for a, b in zip(dist.get_weights(), single.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_model_parallel_pipeline_equals_single_process(local_ray):
    """3 stages, 4 micro-batches: gradients summed over the micro-batches make the batch's step."""
    import neurona as nr

    nr.manual_seed(0)
    x, y = _problem(96)

    def make():
        m = Sequential([Dense(16, input_dim=8, activation="relu"), Dense(16, activation="tanh"),
                        Dense(3, activation="softmax")])
        m.compile(SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
        return m
    dist, single = make(), make()
    single.set_weights(dist.get_weights())
    strategy = nd.ModelParallel(stages=3, micro_batches=4)
    nd.fit(dist, x, y, strategy=strategy, epochs=2, batch_size=32, shuffle=False, verbose=0)
    single.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
    for a, b in zip(dist.get_weights(), single.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# -- asynchronous: converges, staleness recorded ------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: nd.AsyncSGD(2),
    lambda: nd.Downpour(2, shards=2, n_fetch=2, n_push=2, staleness="scale")], ids=["AsyncSGD", "Downpour"])
def test_async_converges_and_records_staleness(local_ray, make, tmp_path):
    x, y = _problem()
    strategy = make()
    model = _model()
    history = nd.fit(model, x, y, strategy=strategy, epochs=3, batch_size=16, verbose=0, log_dir=tmp_path)
    loss = history.history["loss"]
    assert loss[-1] < 0.5 * loss[0], loss
    assert model.evaluate(x, y, return_dict=True)["accuracy"] > 0.85
    # one entry per push and shard: 2 workers × 3 epochs × 8 steps / n_push, on each shard
    assert sum(strategy.metrics.histogram.values()) == 2 * 3 * (128 // 16) // strategy.n_push * strategy.n_shards
    stats = strategy.final_server_stats
    assert len(stats) == strategy.n_shards and all(s["version"] > 0 for s in stats)
    assert {"samples_per_s", "worker0_samples_per_s", "staleness", "push_ms", "fetch_ms"} <= set(history.history)
    tags = _event_tags(tmp_path)
    assert {"epoch_loss", "epoch_samples_per_s", "epoch_staleness", "staleness", "epoch_worker1_samples_per_s"} <= tags


def _event_tags(folder):
    """Tags in the TensorBoard event file under `folder`, read by hand (TFRecord framing)."""
    from tensorboardX.proto import event_pb2

    (path,) = [f for f in folder.iterdir() if f.name.startswith("events.out.tfevents")]
    tags, raw, pos = set(), path.read_bytes(), 0
    while pos < len(raw):  # length (8 bytes), crc (4), data, crc (4)
        n = int.from_bytes(raw[pos:pos + 8], "little")
        tags.update(v.tag for v in event_pb2.Event.FromString(raw[pos + 12:pos + 12 + n]).summary.value)
        pos += 12 + n + 4
    return tags


def test_downpour_drops_stale_pushes(local_ray):
    from neurona.data import ArrayDataset

    x, y = _problem()
    strategy = nd.Downpour(2, shards=1, staleness="drop", max_staleness=0)
    nd.fit(_model(), ArrayDataset(x, y), strategy=strategy, epochs=1, batch_size=16, verbose=0)
    stats = strategy.final_server_stats[0]
    stale = sum(n for s, n in stats["histogram"].items() if s > 0)
    assert stats["dropped"] == stale
    assert stats["version"] == stats["histogram"].get(0, 0)


# -- faults ---------------------------------------------------------------------------------------------
def test_workers_take_their_share_of_the_cpus(local_ray):
    """No oversubscription: 2 workers on this machine each run their kernels and BLAS on
    available_cpus() // 2 threads; threads_per_worker sets the count; a bad count is refused."""
    from neurona.backend import available_cpus

    x, y = _problem()
    seen = {}

    def look(s):
        for i, actor in enumerate(s.actors):
            seen[i] = nd.cluster.call(actor.ping.remote(), 30, "ping")

    for threads, expected in ((None, max(1, available_cpus() // 2)), (3, 3)):
        s = nd.ParameterAveraging(2, period=1, threads_per_worker=threads)
        nd.fit(_model(), x, y, strategy=s, epochs=1, batch_size=64, verbose=0, callbacks=[_At(s, 0, 1, look)])
        assert [seen[i]["threads"] for i in (0, 1)] == [expected, expected]
        assert all(seen[i]["blas_threads"] and set(seen[i]["blas_threads"]) == {expected} for i in (0, 1)), [seen[i]["blas_threads"] for i in (0, 1)]
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads_per_worker"):
            nd.ParameterAveraging(2, threads_per_worker=bad)


def test_worker_sigkill_is_survived(local_ray):
    x, y = _problem()
    strategy = nd.AsyncSGD(2)
    with pytest.warns(UserWarning, match="worker 0 died and was restarted"):
        history = nd.fit(_model(), x, y, strategy=strategy, epochs=3, batch_size=16, verbose=0,
                         callbacks=[_At(strategy, 0, 3, _kill_worker(0))])
    loss = history.history["loss"]
    assert loss[-1] < 0.5 * loss[0], loss
    assert any("restarted by Ray" in e for e in strategy.metrics.events)


def test_shard_sigkill_restarts_from_checkpoint(local_ray):
    x, y = _problem()
    strategy = nd.Downpour(2, shards=2, checkpoint_every=5)
    with pytest.warns(UserWarning, match="shard 1 restarted from its checkpoint"):
        history = nd.fit(_model(), x, y, strategy=strategy, epochs=3, batch_size=16, verbose=0,
                         callbacks=[_At(strategy, 1, 7, _kill_shard(1))])
    loss = history.history["loss"]
    assert loss[-1] < 0.5 * loss[0], loss
    event = next(e for e in strategy.metrics.events if "shard 1 restarted" in e)
    lost = int(event.split(";")[1].split()[0])
    assert 0 <= lost < 5 + 2  # at most one checkpoint interval (+ pushes in flight)
    assert strategy.final_server_stats[1]["restored_from"] % 5 == 0


def test_restarts_exhausted_continues_with_the_rest(local_ray):
    x, y = _problem()
    strategy = nd.ParameterAveraging(2, max_restarts=0)
    with pytest.warns(UserWarning, match="continuing with 1 workers"):
        history = nd.fit(_model(), x, y, strategy=strategy, epochs=2, batch_size=16, verbose=0,
                         callbacks=[_At(strategy, 0, 2, _kill_worker(1))])
    assert len(history.history["loss"]) == 2 and history.history["loss"][1] < history.history["loss"][0]
    assert any("gone for good" in e for e in strategy.metrics.events)


def test_straggler_is_dropped(local_ray):
    x, y = _problem(64)
    slow = lambda s: s.actors[1].simulate_delay.remote(3.0)  # noqa: E731
    strategy = nd.ParameterAveraging(2, straggler_timeout=1.0, on_straggler="drop")
    with pytest.warns(UserWarning, match="worker 1 was slower than straggler_timeout"):
        history = _model().fit(x, y, epochs=2, batch_size=16, verbose=0, distribute=strategy,
                               callbacks=[_At(strategy, 0, 0, slow)])
    assert strategy.metrics.events and len(history.history["loss"]) == 2


def test_cli_trains_a_saved_model(local_ray, tmp_path, capsys):
    import json

    from neurona.distributed.__main__ import main

    model = Sequential([Dense(32, input_dim=64, activation="relu"), Dense(10, activation="softmax")])
    model.compile(SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(tmp_path / "mlp")
    main(["train", "--model-config", str(tmp_path / "mlp"), "--dataset", "digits", "--strategy", "allreduce",
          "--workers", "2", "--epochs", "2", "--batch-size", "32", "--out", str(tmp_path / "trained")])
    result = json.loads([line for line in capsys.readouterr().out.splitlines() if line.startswith("{")][-1])
    assert result["strategy"] == "AllReduce(workers=2)" and result["test"]["accuracy"] > 0.6
    assert (tmp_path / "trained" / "config.json").is_file()


# -- the parameter server itself (no Ray needed: the actor is a plain class) --------------------------------
def test_push_is_applied_once_per_id(tmp_path):
    w = {"w": np.ones(3, np.float32)}
    ps = nd.ParameterServer(0, w, {"class_name": "SGD", "config": {"learning_rate": 0.5}})
    g = {"w": np.ones(3, np.float32)}
    first = ps.push(7, 0, g, 0)
    again = ps.push(7, 0, g, 0)  # the retry of a push whose answer was lost
    assert first["applied"] and again["duplicate"] and not again["applied"]
    assert ps.version == 1 and ps.duplicates == 1
    np.testing.assert_allclose(ps.pull()[1]["w"], 0.5)
    assert ps.push(8, 0, g, 0)["staleness"] == 1  # another worker, computed before the first update


def test_shard_checkpoint_restore(tmp_path):
    opt = {"class_name": "SGD", "config": {"learning_rate": 0.1, "momentum": 0.9}}
    ps = nd.ParameterServer(1, {"w": np.zeros(2, np.float32)}, opt, checkpoint_dir=tmp_path, checkpoint_every=2)
    for seq in range(3):
        ps.push(0, seq, {"w": np.ones(2, np.float32)}, ps.version)
    # what Ray does after a SIGKILL: __init__ again with the same arguments
    again = nd.ParameterServer(1, {"w": np.zeros(2, np.float32)}, opt, checkpoint_dir=tmp_path, checkpoint_every=2)
    assert again.restored_from == 2 and again.version == 2 and again.last_seq == {0: 1}
    ref = nd.ParameterServer(1, {"w": np.zeros(2, np.float32)}, opt)
    for seq in range(2):
        ref.push(0, seq, {"w": np.ones(2, np.float32)}, ref.version)
    np.testing.assert_allclose(again.pull()[1]["w"], ref.pull()[1]["w"])
    np.testing.assert_allclose(again.optimizer.state[0]["velocity"].numpy(), ref.optimizer.state[0]["velocity"].numpy())
    assert again.push(0, 1, {"w": np.ones(2, np.float32)}, 2)["duplicate"]  # seq 1 was checkpointed


# -- clear errors ----------------------------------------------------------------------------------------
def test_more_workers_than_samples():
    x, y = _problem(3)
    with pytest.raises(ValueError, match="4 workers for 3 samples"):
        nd.fit(_model(), x, y, strategy=nd.AsyncSGD(4))


def test_more_shards_than_parameters():
    x, y = _problem(16)
    with pytest.raises(ValueError, match="5 shards for 4 parameter tensors"):
        nd.fit(_model(), x, y, strategy=nd.Downpour(2, shards=5))


def test_unreachable_address_fails_fast():
    import time

    start = time.monotonic()
    with pytest.raises(ConnectionError, match="127.0.0.1:9"):
        nd.cluster.check_reachable("127.0.0.1:9", timeout=2)
    assert time.monotonic() - start < 5


def test_model_that_cannot_be_rebuilt():
    from neurona.nn.layer import Layer

    class Unregistered(Layer):
        def call(self, x, training=None):
            return x

    model = Sequential([Dense(3, input_dim=8), Unregistered()])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = _problem(16)
    with pytest.raises(ValueError, match="cannot be rebuilt from its config"):
        nd.fit(model, x, y, strategy=nd.AsyncSGD(2))


def test_import_neurona_does_not_load_ray():
    import subprocess
    import sys

    code = "import sys, neurona, neurona.distributed; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip() == "False"


def test_worker_gradients_come_from_the_public_train_step():
    """A worker's gradients are those of the model's own train_step (loss with the layers'
    penalties, clipping left to the applying optimiser), taken without moving its weights."""
    import neurona as nr
    from neurona.distributed import replica
    from neurona.regularizers import L2

    nr.manual_seed(0)
    m = Sequential([Dense(16, input_dim=8, activation="relu", kernel_regularizer=L2(0.1)),
                    Dense(3, activation="softmax")])
    m.compile(SGD(0.1, clipnorm=1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _problem(32)
    before = m.get_weights()
    loss, grads, logs = replica.loss_and_gradients(m, [x], [y])
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)  # the local optimiser did not step
    # the same gradients by hand: compiled loss + penalty, backward, no clipping
    weights = replica.named_weights(m)
    out = m(nr.tensor(x), training=True)
    total = m.compute_loss([nr.tensor(x)], [nr.tensor(y)], out)
    for t in weights.values():
        t.grad = None
    total.backward()
    assert loss == pytest.approx(float(total.item()), rel=1e-6)
    assert set(grads) == set(weights)
    for name, t in weights.items():
        np.testing.assert_allclose(grads[name], t.grad.numpy(), rtol=1e-6, atol=1e-7)
    assert np.abs(grads[m.layers[0].kernel.name]).max() > 1e-3  # unclipped
    assert set(logs) == {"accuracy"} and 0.0 <= logs["accuracy"] <= 1.0
    # the link is inactive outside the call: a plain step updates the weights
    m.train_on_batch(x, y)
    assert any(not np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
