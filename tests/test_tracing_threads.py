"""Graph mode's tracing state is per thread (a context variable, `neurona.autograd.tracing`):
while one thread traces and replays `nr.jit` steps, eager work in other threads (predictions,
forward and backward passes, in-place updates, `t[i] = v`, `.item()`, `repr`) gives exactly the
results it gives alone, and the traced training gives exactly its single-threaded weights."""
import threading

import numpy as np

import neurona as nr
from neurona import functional as F
from neurona.autograd import tracing
from neurona.layers import Dense
from neurona.models import Sequential
from neurona.optimizers import SGD

ROUNDS = 4  # fresh nr.jit functions: each traces once and replays once


def _served():
    nr.manual_seed(3)
    model = Sequential([Dense(32, activation="relu", input_shape=(16,)), Dense(4, activation="softmax")])
    model.build((None, 16))
    return model


def _eager_work(w0, x):
    """Eager code through every Tensor hook the tracer uses."""
    w = nr.tensor(w0.copy(), requires_grad=True)
    loss = (nr.tanh(x @ w) ** 2).mean()
    loss.backward()
    with nr.no_grad():
        w -= 0.1 * w.grad
        w *= 1.5
    z = nr.zeros(3)
    z[1] = loss.detach()
    return loss.item(), float(loss), bool(loss > 0), w.numpy().copy(), z.tolist(), repr(z)


def _same(a, b):
    assert a[:3] == b[:3] and a[4:] == b[4:]
    np.testing.assert_array_equal(a[3], b[3])


def _train(x, y, hold=None):
    """ROUNDS traced SGD steps of a fresh model; `hold()` runs inside the first trace."""
    nr.manual_seed(7)
    model = Sequential([Dense(16, activation="tanh", input_shape=(16,)), Dense(4)])
    model.build((None, 16))
    opt = SGD(model.trainable_weights, learning_rate=0.1, momentum=0.9)
    losses = []
    for r in range(ROUNDS):
        def step(x, y, first=r == 0):
            if first and hold is not None:
                hold()  # Python side effects run at tracing time only: the trace is open here
            opt.zero_grad()
            loss = F.cross_entropy(model(x, training=True), y)
            loss.backward()
            opt.step()
            return loss

        f = nr.jit(step)
        losses += [f(x, y).item(), f(x, y).item()]
        assert f.trace_count == 1
    return losses, [w.numpy().copy() for w in model.trainable_weights]


def test_eager_threads_are_untouched_while_another_thread_traces():
    rng = np.random.default_rng(0)
    served = _served()
    xs = rng.standard_normal((32, 16)).astype(np.float32)
    w0 = rng.standard_normal((16, 8)).astype(np.float32)
    xe = nr.tensor(rng.standard_normal((5, 16)).astype(np.float32))
    xt, yt = nr.tensor(xs), nr.tensor(rng.integers(0, 4, 32))
    # single-threaded references
    ref_pred = served.predict(xs, verbose=0)
    ref_eager = _eager_work(w0, xe)
    ref_losses, ref_weights = _train(xt, yt)

    inside, release = threading.Event(), threading.Event()
    lock = threading.Lock()
    done = [0]
    seen_foreign_trace = [0]  # iterations run while another thread's trace was open
    errors = []
    stop = threading.Event()

    def worker():
        try:
            inside.wait(30)
            n = 0
            while not stop.is_set() or n < 5:
                open_elsewhere = tracing.recording > 0
                np.testing.assert_array_equal(served.predict(xs, verbose=0), ref_pred)
                with nr.no_grad():
                    np.testing.assert_array_equal(served(nr.tensor(xs), training=False).numpy(), ref_pred)
                _same(_eager_work(w0, xe), ref_eager)
                assert not nr.autograd.is_tracing()
                n += 1
                with lock:
                    done[0] += 1
                    seen_foreign_trace[0] += open_elsewhere and tracing.recording > 0
                    if done[0] >= 9:
                        release.set()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)
            release.set()

    def hold():
        assert nr.autograd.is_tracing()
        inside.set()
        release.wait(60)  # until the workers ran several iterations inside this open trace

    result = {}

    def trainer():
        try:
            result["train"] = _train(xt, yt, hold)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            inside.set()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    tt = threading.Thread(target=trainer)
    for t in threads + [tt]:
        t.start()
    tt.join(120)
    stop.set()
    for t in threads:
        t.join(120)
    assert not errors, errors[0]
    assert seen_foreign_trace[0] >= 1
    losses, weights = result["train"]
    assert losses == ref_losses
    for a, b in zip(weights, ref_weights):
        np.testing.assert_array_equal(a, b)
    assert tracing.recording == 0 and not nr.autograd.is_tracing()


def test_is_tracing_is_per_thread():
    inside, release = threading.Event(), threading.Event()
    seen = {}

    @nr.jit
    def f(x):
        seen["tracer"] = nr.autograd.is_tracing()
        inside.set()
        release.wait(10)
        return x + 1

    t = threading.Thread(target=lambda: f(nr.ones(2)))
    t.start()
    inside.wait(10)
    seen["other"] = nr.autograd.is_tracing()
    seen["gate_open"] = tracing.recording > 0
    y = nr.ones(2)
    y += 1  # an eager in-place update here: not recorded by the other thread's trace
    seen["eager"] = y.tolist()
    release.set()
    t.join(10)
    assert seen == {"tracer": True, "other": False, "gate_open": True, "eager": [2.0, 2.0]}
    assert f.graphs()[0].op_types() == ["Add"] and not nr.autograd.is_tracing()
