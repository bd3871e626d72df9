"""nr.jit: traced functions give eager's values and gradients (every op family), replay on new
inputs, retrace on new signatures, refuse Python branches on traced values, and a whole
training step (forward, backward, optimiser update) runs as one graph."""
import numpy as np
import pytest
import torch

import neurona as nr
from neurona import functional as F
from neurona.autograd.function import Function
from neurona.graph import ConcretizationError, jit

rng = np.random.default_rng(0)


def _t(*shape, grad=False, positive=False):
    a = rng.standard_normal(shape).astype(np.float32)
    return nr.tensor(np.abs(a) + 0.5 if positive else a, requires_grad=grad)


# name -> (function of tensors returning a scalar loss, input factory)
CASES = {
    "elementwise": (lambda a, b: (a * b + a / (b * b + 1) - nr.exp(a) * 0.1 + nr.sqrt(b * b + 1)
                                  + nr.maximum(a, b) + nr.abs(a) + nr.clip(b, -0.5, 0.5)).sum(),
                    lambda: (_t(3, 4, grad=True), _t(3, 4, grad=True))),
    "activations": (lambda a, b: (nr.sigmoid(a) * nr.tanh(b) + F.relu(a - b) + F.leaky_relu(b)
                                  + F.softplus(a) + F.softmax(a, axis=1) * F.log_softmax(b, axis=1)).sum(),
                    lambda: (_t(3, 4, grad=True), _t(3, 4, grad=True))),
    "broadcast_pow_log": (lambda a, b: (nr.log(a) * b ** 2 + a ** b).mean(),
                          lambda: (_t(3, 4, grad=True, positive=True), _t(4, grad=True))),
    "reductions": (lambda a, b: a.sum(axis=0).max() + a.mean(axis=1).min() + a.var(axis=1).sum()
                   + a.logsumexp(axis=1).sum() + (b.max(axis=1, keepdims=True) * a).sum(),
                   lambda: (_t(3, 4, grad=True), _t(3, 4, grad=True))),
    "movement": (lambda a, b: (a.reshape(4, 3).T * b).sum() + nr.concatenate([a, b], axis=0)[1:4, ::2].sum()
                 + (nr.stack([a, b]).transpose(1, 0, 2) ** 2).sum() + a.flatten().expand_dims(0).squeeze().sum()
                 + nr.pad(a, ((1, 0), (0, 2))).sum() + a[[0, 2], 1].sum(),
                 lambda: (_t(3, 4, grad=True), _t(3, 4, grad=True))),
    "matmul": (lambda a, b: ((a @ b) ** 2).sum() + (a @ b[:, 0]).sum(),
               lambda: (_t(3, 4, grad=True), _t(4, 5, grad=True))),
    "conv_pool": (lambda x, w: (nr.max_pool2d(nr.relu(nr.conv2d(x, w, padding=1)), 2)
                                + nr.avg_pool2d(nr.conv2d(x, w, padding=1), 2)).sum(),
                  lambda: (_t(2, 3, 8, 8, grad=True), _t(4, 3, 3, 3, grad=True))),
    "losses": (lambda a, b: F.cross_entropy(a, nr.tensor(np.array([0, 2, 1]))) + F.mse_loss(a, b)
               + F.huber_loss(a, b, delta=0.5) + F.binary_cross_entropy_with_logits(a, nr.sigmoid(b)),
               lambda: (_t(3, 4, grad=True), _t(3, 4, grad=True))),
}


def _value_and_grads(fn):
    def run(a, b):
        loss = fn(a, b)
        ga, gb = nr.grad(loss, [a, b])
        return loss, ga, gb
    return run


@pytest.mark.parametrize("name", sorted(CASES))
def test_traced_matches_eager(name):
    fn, make = CASES[name]
    traced = jit(_value_and_grads(fn))
    for _ in range(3):  # the first call traces, the next ones replay the graph on new data
        a, b = make()
        expect = _value_and_grads(fn)(a, b)
        got = traced(a, b)
        for e, g in zip(expect, got):
            np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=2e-5, atol=2e-6)
    assert traced.trace_count == 1


def test_traced_matches_torch_mlp():
    """A small MLP's loss and gradients, traced, against PyTorch."""
    x, w1, w2 = _t(5, 4), _t(4, 6, grad=True), _t(6, 3, grad=True)
    y = np.array([0, 1, 2, 1, 0])

    @jit
    def step(x, w1, w2):
        loss = F.cross_entropy(F.relu(x @ w1) @ w2, nr.tensor(y))
        return (loss,) + nr.grad(loss, [w1, w2])

    step(x, w1, w2)
    x2 = _t(5, 4)
    loss, g1, g2 = step(x2, w1, w2)
    tx, tw1, tw2 = (torch.tensor(t.numpy(), requires_grad=True) for t in (x2, w1, w2))
    tl = torch.nn.functional.cross_entropy(torch.relu(tx @ tw1) @ tw2, torch.tensor(y))
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-5)
    np.testing.assert_allclose(g1.numpy(), tw1.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(g2.numpy(), tw2.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_retrace_on_new_signature_and_static_args(capsys, monkeypatch):
    monkeypatch.setenv("NEURONA_DEBUG", "1")

    @jit
    def f(x, scale):
        return x * scale

    assert f(nr.ones(3), 2.0).tolist() == [2.0, 2.0, 2.0]
    assert f(nr.zeros(3), 2.0).tolist() == [0.0, 0.0, 0.0]
    assert f.trace_count == 1
    f(nr.ones(4), 2.0)  # new shape
    assert f(nr.ones(4), 3.0).tolist() == [3.0] * 4  # new static argument
    assert f.trace_count == 3
    err = capsys.readouterr().err
    assert err.count("[neurona.jit] tracing") == 3 and "trace #3" in err


def test_debug_2_prints_ir_after_each_pass(capsys, monkeypatch):
    monkeypatch.setenv("NEURONA_DEBUG", "2")
    jit(lambda x: nr.exp(x) * 2 + 1)(nr.ones(2))
    err = capsys.readouterr().err
    for name in ("traced", "after dce", "after constant_folding", "after cse", "after fusion"):
        assert f"[neurona.graph] {name}" in err
    assert "Exp" in err and "Fused" in err


def test_branching_on_a_traced_value_is_an_error():
    @jit
    def f(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(ConcretizationError, match="cannot depend on it"):
        f(nr.ones(3))
    with pytest.raises(ConcretizationError):
        jit(lambda x: float(x.sum()))(nr.ones(3))
    # a data-dependent choice written with nr.where traces fine
    g = jit(lambda x: nr.where(x > 0, x, -x))
    g(nr.ones(2))
    assert g(nr.tensor([-1.0, 2.0])).tolist() == [1.0, 2.0]


def test_python_side_effects_run_only_while_tracing():
    calls = []

    @jit
    def f(x):
        calls.append(1)
        return x + 1

    for _ in range(3):
        f(nr.ones(2))
    assert calls == [1]


class _PositiveOnly(Function):
    def forward(self, a):
        if (a < 0).any():
            raise ValueError("negative input")
        return a * 1


def test_error_in_replay_points_at_the_user_line():
    @jit
    def f(x):
        return _PositiveOnly.apply(x)  # the line the error must name

    f(nr.ones(2))
    with pytest.raises(ValueError, match="negative input") as info:
        f(-nr.ones(2))
    note = "\n".join(getattr(info.value, "__notes__", []))
    assert "test_graph_jit.py" in note and "the line the error must name" in note


def test_inplace_update_and_setitem_are_written_back():
    p = nr.ones(3)

    @jit
    def bump(x):
        t = p  # `p += x` directly would make p a local name of bump
        with nr.no_grad():
            t += x
            t[0] = 0.0
        return t * 1

    bump(nr.ones(3))
    out = bump(nr.full(3, 2.0))
    assert p.tolist() == [0.0, 4.0, 4.0] and out.tolist() == [0.0, 4.0, 4.0]


def test_grad_write_back_and_accumulation_retrace():
    w = nr.tensor([1.0, 2.0], requires_grad=True)

    @jit
    def f(x):
        (w * x).sum().backward()

    f(nr.tensor([3.0, 4.0]))
    assert w.grad.tolist() == [3.0, 4.0]
    f(nr.tensor([1.0, 1.0]))  # w.grad is now set: eager would accumulate, so must the graph
    assert w.grad.tolist() == [4.0, 5.0]
    f(nr.tensor([1.0, 1.0]))
    assert w.grad.tolist() == [5.0, 6.0] and f.trace_count == 2


def _mlp_params(seed):
    r = np.random.default_rng(seed)
    shapes = [(20, 16), (16,), (16, 16), (16,), (16, 4), (4,)]
    return [nr.tensor(r.standard_normal(s).astype(np.float32) * 0.3, requires_grad=True) for s in shapes]


def _sgd_step(params, vel, lr=0.05, mu=0.9):
    def step(x, y):
        w1, b1, w2, b2, w3, b3 = params
        h = F.relu(F.relu(x @ w1 + b1) @ w2 + b2)
        loss = F.cross_entropy(h @ w3 + b3, y)
        loss.backward()
        with nr.no_grad():
            for p, v in zip(params, vel):
                v *= mu
                v += p.grad
                p -= lr * v
                p.grad = None
        return loss
    return step


def test_whole_training_step_sgd_momentum_matches_eager():
    pe, pj = _mlp_params(1), _mlp_params(1)
    eager = _sgd_step(pe, [nr.zeros_like(p) for p in pe])
    traced = jit(_sgd_step(pj, [nr.zeros_like(p) for p in pj]))
    r = np.random.default_rng(2)
    for _ in range(5):
        x = nr.tensor(r.standard_normal((8, 20)).astype(np.float32))
        y = nr.tensor(r.integers(0, 4, 8))
        np.testing.assert_allclose(traced(x, y).item(), eager(x, y).item(), rtol=1e-5)
    for a, b in zip(pe, pj):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
    assert traced.trace_count == 1
    traced_graph, optimized = traced.graphs()
    assert "MatMul" in traced_graph.op_types() and "Fused" in optimized.op_types()
    stats = traced.memory_stats()
    assert stats["in_place_updates"] == 12 and stats["peak_bytes"] <= stats["peak_bytes_no_reuse"]


def test_dqn_step_huber_adam_with_tensor_step_count():
    """Adam's step count is a tensor so that its bias correction is part of the graph."""
    def make():
        r = np.random.default_rng(3)
        ps = [nr.tensor(r.standard_normal(s).astype(np.float32) * 0.3, requires_grad=True)
              for s in [(4, 8), (8,), (8, 2), (2,)]]
        return ps, [nr.zeros_like(p) for p in ps], [nr.zeros_like(p) for p in ps], nr.zeros(())

    def step_fn(ps, ms, vs, count, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
        def step(s, a, target):
            t = count
            w1, c1, w2, c2 = ps
            q = F.relu(s @ w1 + c1) @ w2 + c2
            picked = nr.gather(q, a.reshape(-1, 1), axis=1).reshape(-1)
            loss = F.huber_loss(picked, target)
            loss.backward()
            with nr.no_grad():
                t += 1
                k1, k2 = 1 - b1 ** t, 1 - b2 ** t
                for p, m, v in zip(ps, ms, vs):
                    m *= b1
                    m += (1 - b1) * p.grad
                    v *= b2
                    v += (1 - b2) * p.grad * p.grad
                    p -= lr * (m / k1) / ((v / k2).sqrt() + eps)
                    p.grad = None
            return loss
        return step

    ea, ja = make(), make()
    eager, traced = step_fn(*ea), jit(step_fn(*ja))
    r = np.random.default_rng(4)
    for _ in range(4):
        s = nr.tensor(r.standard_normal((6, 4)).astype(np.float32))
        a = nr.tensor(r.integers(0, 2, 6))
        target = nr.tensor(r.standard_normal(6).astype(np.float32) * 2)
        np.testing.assert_allclose(traced(s, a, target).item(), eager(s, a, target).item(), rtol=1e-5)
    for x, y in zip(ea[0], ja[0]):
        np.testing.assert_allclose(y.numpy(), x.numpy(), rtol=1e-5, atol=1e-6)
    assert ja[3].item() == 4.0 and traced.trace_count == 1


def test_raw_numpy_update_while_tracing_is_an_error():
    w = nr.tensor([1.0, 2.0], requires_grad=True)

    @jit
    def step(x):
        (w * x).sum().backward()
        w.data -= 0.1 * w.grad.data  # raw NumPy: invisible to the tracer
        w.grad = None

    with pytest.raises(RuntimeError, match="changed in place by code that is not a neurona op"):
        step(nr.ones(2))


def test_two_threads_trace_at_the_same_time():
    import threading

    inside, go = threading.Event(), threading.Event()

    @jit
    def slow(x):
        y = x * 3
        inside.set()
        go.wait(10)  # the other thread traces while this trace is open
        return y + 1

    @jit
    def fast(x):
        return nr.exp(x) - 1

    result = {}
    t = threading.Thread(target=lambda: result.setdefault("slow", slow(nr.ones(2))))
    t.start()
    inside.wait(10)
    assert fast(nr.zeros(2)).tolist() == [0.0, 0.0]
    go.set()
    t.join(10)
    assert result["slow"].tolist() == [4.0, 4.0]
    assert slow.graphs()[0].op_types() == ["Mul", "Add"] and fast.graphs()[0].op_types() == ["Exp", "Sub"]
    assert slow(nr.zeros(2)).tolist() == [1.0, 1.0] and fast(nr.ones(2)).tolist()[0] == pytest.approx(np.e - 1)


def test_raw_numpy_rebinding_while_tracing_is_an_error():
    w = nr.tensor([1.0, 2.0])

    @jit
    def step(x):
        w.data = w.data * 0.5 + x.data  # NumPy on .data: invisible to the tracer
        return x * 2

    with pytest.raises(RuntimeError, match="replaced by an array computed outside neurona ops"):
        step(nr.ones(2))


def test_dropout_draws_a_fresh_mask_at_every_replay():
    # Dropout is a Function whose forward draws the mask: a replay runs the node again, so the
    # mask changes from call to call, and the sequence is eager mode's from the same seed.
    x = nr.ones((64, 32))
    f = jit(lambda x: F.dropout(x, 0.25))
    nr.manual_seed(5)
    traced = [f(x).numpy() for _ in range(3)]
    nr.manual_seed(5)
    eager = [F.dropout(x, 0.25).numpy() for _ in range(3)]
    assert f.trace_count == 1
    assert not np.array_equal(traced[1], traced[2])
    for t, e in zip(traced, eager):
        np.testing.assert_array_equal(t, e)
        assert set(np.unique(t).tolist()) <= {0.0, np.float32(1 / 0.75)}


def test_dropout_gradient_in_a_traced_step_uses_that_calls_mask():
    w = nr.tensor(np.ones((16, 8), np.float32), requires_grad=True)

    @jit
    def step(x):
        w.grad = None
        F.dropout(x @ w, 0.5).sum().backward()
        return w.grad

    x = _t(4, 16)
    for seed in (1, 2):
        nr.manual_seed(seed)
        got = step(x).numpy()
        nr.manual_seed(seed)
        w.grad = None
        F.dropout(x @ w, 0.5).sum().backward()
        np.testing.assert_allclose(got, w.grad.numpy(), rtol=1e-6)
    assert step.trace_count == 1


def test_batchnorm_moving_statistics_update_in_a_traced_step():
    from neurona.layers import BatchNormalization

    eager, traced = BatchNormalization(momentum=0.9), BatchNormalization(momentum=0.9)
    for layer in (eager, traced):  # built outside the trace: weights made while tracing are constants
        layer(_t(2, 5), training=False)
    f = jit(lambda x: traced(x, training=True))
    for _ in range(3):
        x = _t(32, 5) * 3 + 1
        np.testing.assert_allclose(f(x).numpy(), eager(x, training=True).numpy(), rtol=1e-5, atol=1e-6)
    assert f.trace_count == 1
    np.testing.assert_allclose(traced.moving_mean.numpy(), eager.moving_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(traced.moving_variance.numpy(), eager.moving_variance.numpy(), rtol=1e-6)
    assert not np.allclose(traced.moving_mean.numpy(), 0.0)


def test_zero_grad_inside_the_step_does_not_force_retraces():
    # The incoming .grad of a tensor that the function clears before reading cannot change the
    # graph, so it is not part of the signature: one trace for a whole training loop.
    w = nr.tensor(np.ones((4, 3), np.float32), requires_grad=True)
    opt = nr.optim.SGD([w], learning_rate=0.1, momentum=0.9)

    @jit
    def step(x):
        opt.zero_grad()
        loss = (x @ w).sum()
        loss.backward()
        opt.step()
        return loss

    for _ in range(4):
        step(_t(2, 4))
    assert step.trace_count == 1 and w.grad is not None and opt.iterations == 4


def test_comparisons_are_functions_without_gradient():
    x = _t(3, 4, grad=True)
    mask = x > 0
    assert mask.dtype == np.bool_ and not mask.requires_grad
    np.testing.assert_array_equal(mask.numpy(), x.numpy() > 0)
    f = jit(lambda a: nr.where(a > 0, a, a * 0.1).sum())
    assert f(x).item() == pytest.approx(float(np.where(x.numpy() > 0, x.numpy(), x.numpy() * 0.1).sum()), rel=1e-6)
    assert "Compare" in f.graphs()[0].op_types()


def test_concrete_function_replays_one_signature_and_checks_its_inputs():
    """A concrete function gives the plain call's values under any grad mode (its graph is the
    one traced when it was made), sees new weights, refuses another shape, retraces through the
    plain call when a state's dtype changes, and runs the Python function inside another trace."""
    w = nr.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    f = jit(lambda x: nr.relu(x @ w) * 2)
    x = _t(2, 4)
    with nr.no_grad():
        g = f.concrete_function(x)
    assert f.trace_count == 1
    # the replay's fused small matmul sums in its own order (float32): a few ulps of the products
    want = np.maximum(x.numpy() @ w.numpy(), 0) * 2
    for grad_on in (True, False):
        with nr.set_grad_enabled(grad_on):
            np.testing.assert_allclose(g(x).numpy(), want, rtol=1e-5, atol=1e-6)
    assert f.trace_count == 1
    with nr.no_grad():
        w.data = w.numpy() + 1.0
    np.testing.assert_allclose(g(x).numpy(), np.maximum(x.numpy() @ w.numpy(), 0) * 2, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"argument 0 is float32\[3, 4\], the signature is float32\[2, 4\]"):
        g(_t(3, 4))
    with pytest.raises(TypeError, match="Tensors"):
        f.concrete_function(x.numpy())
    w64 = w.numpy().astype(np.float64)
    with nr.no_grad():
        w.data = w64
    np.testing.assert_allclose(g(x).numpy(), np.maximum(x.numpy() @ w64, 0) * 2, rtol=1e-5, atol=1e-6)
    assert f.trace_count == 2

    class Lookups(dict):  # counts the plain call's cache look-ups
        n = 0

        def get(self, *a):
            Lookups.n += 1
            return super().get(*a)

    f.cache = Lookups(f.cache)
    np.testing.assert_allclose(g(x).numpy(), np.maximum(x.numpy() @ w64, 0) * 2, rtol=1e-6)
    assert Lookups.n == 0 and f.trace_count == 2  # the new graph, replayed straight away
    outer = jit(lambda x: g(x).sum())
    np.testing.assert_allclose(outer(x).item(), (np.maximum(x.numpy() @ w64, 0) * 2).sum(), rtol=1e-5)


def test_array_function_takes_and_returns_arrays_with_the_concrete_functions_rules():
    """`array_function`: arrays in, arrays out (a structure of them for several outputs), the
    values of the Tensor call, new weights seen, another shape or dtype refused by name, a
    state's new dtype retraced through the plain call."""
    w = nr.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    f = jit(lambda x: (nr.relu(x @ w), {"twice": x * 2}))
    x = _t(2, 4)
    with nr.no_grad():
        g = f.array_function(x)
    out = g(x.numpy())
    assert type(out[0]) is np.ndarray and type(out[1]["twice"]) is np.ndarray
    np.testing.assert_allclose(out[0], np.maximum(x.numpy() @ w.numpy(), 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[1]["twice"], x.numpy() * 2)
    with nr.no_grad():
        w.data = w.numpy() - 0.5
    np.testing.assert_allclose(g(x.numpy())[0], np.maximum(x.numpy() @ w.numpy(), 0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"array function <lambda>: argument 0 is float64\[2, 4\], "
                                         r"the signature is float32\[2, 4\]"):
        g(x.numpy().astype(np.float64))
    with pytest.raises(TypeError, match="array_function: pass the Tensors"):
        f.array_function(x.numpy())
    w64 = w.numpy().astype(np.float64)
    with nr.no_grad():
        w.data = w64
    first = g(x.numpy())  # the retrace, through the plain call
    assert f.trace_count == 2 and type(first[0]) is np.ndarray
    np.testing.assert_allclose(first[0], np.maximum(x.numpy() @ w64, 0), rtol=1e-6)
    np.testing.assert_allclose(g(x.numpy())[0], np.maximum(x.numpy() @ w64, 0), rtol=1e-6)
    assert f.trace_count == 2


def test_a_grad_the_function_never_touches_is_not_part_of_its_signature():
    """A forward pass over a weight replays whether the weight has a .grad or not; a function
    whose backward accumulates into that .grad retraces when it appears (the sum differs)."""
    w = nr.tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    fwd = jit(lambda x: x @ w)
    x = _t(4, 3)
    fwd(x)
    w.grad = nr.ones((3, 2))
    np.testing.assert_allclose(fwd(x).numpy(), x.numpy() @ w.numpy(), rtol=1e-6)
    assert fwd.trace_count == 1

    def accumulate(x):
        (x @ w).sum().backward()
        return w.grad * 1

    acc = jit(accumulate)
    w.grad = None
    first = acc(x).numpy()
    np.testing.assert_allclose(acc(x).numpy(), 2 * first, rtol=1e-6)  # accumulated onto the first
    assert acc.trace_count == 2
