"""The optimisers' fused eager updates (neurona/backend/kernels/fused_update.py) give the same
bits as their Tensor-op formulas, which still run inside `nr.jit` traces and for arrays the
kernels do not take."""
import numpy as np
import pytest

import neurona as nr
from neurona.backend.kernels import fused_update, numba_active
from neurona.optim import SGD, Adam, AdamW

pytestmark = pytest.mark.skipif(not numba_active(), reason="numba kernels off")

CASES = [
    ("sgd", lambda: SGD(learning_rate=0.05)),
    ("momentum", lambda: SGD(learning_rate=0.05, momentum=0.9)),
    ("nesterov", lambda: SGD(learning_rate=0.05, momentum=0.9, nesterov=True)),
    ("decay", lambda: SGD(learning_rate=0.05, momentum=0.5, decay=0.1)),
    ("adam", lambda: Adam(learning_rate=0.01)),
    ("adamw", lambda: AdamW(learning_rate=0.01, weight_decay=0.1)),
    ("adam-betas", lambda: Adam(learning_rate=0.003, beta_1=0.8, beta_2=0.99, epsilon=1e-6)),
]


def _run(make, dtype, fused, monkeypatch, steps=4):
    if not fused:
        monkeypatch.setattr(fused_update, "sgd", lambda *a: False)
        monkeypatch.setattr(fused_update, "adam", lambda *a: False)
    rng = np.random.default_rng(0)
    params = [nr.tensor(rng.normal(size=s).astype(dtype), requires_grad=True) for s in [(7, 5), (5,), ()]]
    opt = make()
    opt.bind(params)
    for _ in range(steps):
        for p in params:
            p.grad = nr.tensor(rng.normal(size=p.shape).astype(dtype))
        opt.step()
    monkeypatch.undo()
    return [p.numpy().copy() for p in params] + [s.numpy().copy() for st in opt.state for s in st.values()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_fused_update_is_bit_identical(name, make, dtype, monkeypatch):
    calls = []
    real_sgd, real_adam = fused_update.sgd, fused_update.adam
    monkeypatch.setattr(fused_update, "sgd", lambda *a: calls.append(1) or real_sgd(*a))
    monkeypatch.setattr(fused_update, "adam", lambda *a: calls.append(1) or real_adam(*a))
    fused = _run(make, dtype, True, monkeypatch)
    assert calls, "the fused path was not taken"
    plain = _run(make, dtype, False, monkeypatch)
    for a, b in zip(fused, plain):
        np.testing.assert_array_equal(a, b)


def test_unsuited_arrays_fall_back():
    p = np.zeros((4, 4), np.float32)[:, ::2]  # not contiguous
    assert fused_update.sgd(p, np.ones((4, 2), np.float32), None, np.float32(0.1), 0.0, False) is False
    q = np.zeros(3, np.float32)
    assert fused_update.sgd(q, np.ones(3, np.float64), None, np.float32(0.1), 0.0, False) is False  # mixed dtypes
    assert fused_update.sgd(np.zeros(3, np.float16), np.ones(3, np.float16), None, np.float16(0.1), 0.0, False) is False
    assert (q == 0).all()


def test_traced_step_keeps_the_tensor_ops():
    """Inside nr.jit the update is recorded (the fused kernel would write the trace's example
    arrays instead): a jitted step and an eager one give the same weights."""
    from neurona.layers import Dense
    from neurona.models import Sequential

    x = np.random.default_rng(1).normal(size=(16, 3)).astype(np.float32)
    y = np.random.default_rng(2).normal(size=(16, 2)).astype(np.float32)
    out = []
    for jit in (False, True):
        nr.manual_seed(0)
        m = Sequential([Dense(4, input_dim=3, activation="tanh"), Dense(2)])
        m.compile(Adam(0.01), "mse", jit=jit)
        m.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
        out.append(m.get_weights())
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov", "adam", "adamw"])
def test_large_parameters_split_over_numbas_threads_give_the_bits_of_one_thread(kind, monkeypatch):
    from neurona.backend import kernels, thread_limit
    from neurona.backend.kernels import _optim, fused_update as F

    if not kernels.numba_parallel_ok():
        pytest.skip("numba's parallel runtime here is not OpenMP or TBB")
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    split = []
    for name in ("sgd_blocks", "sgd_momentum_blocks", "sgd_nesterov_blocks", "adam_blocks"):
        real = getattr(_optim, name)
        monkeypatch.setattr(_optim, name, lambda *a, _r=real, _n=name: split.append((_n, a[-1])) or _r(*a))
    n = F.MIN_PARALLEL_ELEMENTS + 3

    def run(threads):
        rng = np.random.default_rng(0)
        p, g, m = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
        v = np.abs(rng.standard_normal(n)).astype(np.float32)
        with thread_limit(threads):
            if kind == "sgd":
                assert F.sgd(p, g, None, 0.01, 0.0, False)
            elif kind in ("momentum", "nesterov"):
                assert F.sgd(p, g, m, 0.01, 0.9, kind == "nesterov")
            else:
                assert F.adam(p, g, m, v, 1e-3, 0.9, 0.999, 0.1, 1e-3, 1e-7, 0.01 if kind == "adamw" else 0.0)
        return p, m, v

    one = run(1)
    assert split == []
    two = run(2)
    assert len(split) == 1 and split[0][1] == 2
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    split.clear()
    small = np.zeros(F.MIN_PARALLEL_ELEMENTS - 1, np.float32)
    with thread_limit(2):
        assert F.sgd(small, small.copy(), None, 0.1, 0.0, False)
    assert split == []  # under the floor: one thread
