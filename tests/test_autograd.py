"""The reverse-mode engine: iterative order (a 100,000-op chain), accumulation for tensors used
twice, freeing the graph unless retain_graph, create_graph for higher-order gradients, nr.grad,
retain_grad, the engine's shape check on gradients, and thread-local grad mode."""
import gc
import threading
import weakref

import numpy as np
import pytest
import torch

import neurona as nr


def test_a_100000_op_chain_backpropagates():
    x = nr.tensor(1.0, dtype="float64", requires_grad=True)
    y = x
    for _ in range(50_000):
        y = y * 1.00001
        y = y + 0.5
    y.backward()
    assert x.grad.item() == pytest.approx(1.00001 ** 50_000, rel=1e-9)


def test_deep_chain_second_order():
    x = nr.tensor(0.3, dtype="float64", requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0 + x * 0.001
    (g,) = nr.grad(y * y, [x], create_graph=True)
    (h,) = nr.grad(g, [x])
    # y = (1 + 3000·0.001)·x = 4x, so d²(y²)/dx² = 32
    assert h.item() == pytest.approx(32.0, rel=1e-9)


def test_tensor_used_twice_accumulates():
    x = nr.tensor(3.0, requires_grad=True)
    (x * x + x).backward()  # d/dx (x² + x) = 2x + 1
    assert x.grad.item() == 7.0


def test_diamond_graph_matches_torch():
    def f(x, lib):
        a = x * 2
        b, c = lib.tanh(a), a * a
        return (b * c + a).sum()

    data = np.array([0.3, -0.7, 1.1])
    x = nr.tensor(data, requires_grad=True)
    f(x, nr).backward()
    xt = torch.tensor(data, requires_grad=True)
    f(xt, torch).backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


def test_grad_accumulates_across_backward_calls_until_zeroed():
    w = nr.tensor([1.0, 2.0], requires_grad=True)
    (w * 3).sum().backward()
    (w * 3).sum().backward()
    assert w.grad.tolist() == [6.0, 6.0]
    w.grad = None
    (w * w).sum().backward()
    assert w.grad.tolist() == [2.0, 4.0]


def test_only_leaves_get_grad_unless_retain_grad():
    x = nr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    k = (x * 4).retain_grad()
    (h * k).sum().backward()
    assert h.grad is None
    assert k.grad.tolist() == [3.0, 6.0]   # d(h·k)/dk = h
    assert x.grad.tolist() == [24.0, 48.0]  # 2·12·x


def test_backward_twice_without_retain_graph_says_what_to_do():
    x = nr.tensor(2.0, requires_grad=True)
    y = x.exp() * x
    y.backward()
    with pytest.raises(RuntimeError, match=r"backward through the graph a second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = nr.tensor(2.0, dtype="float64", requires_grad=True)
    y = x.exp() * x
    y.backward(retain_graph=True)
    first = x.grad.item()
    y.backward()
    assert x.grad.item() == pytest.approx(2 * first) and first == pytest.approx(3 * np.exp(2.0))


def test_graph_is_freed_after_backward():
    x = nr.tensor(np.ones(1000), requires_grad=True)

    def build():
        h = x * 2
        ref = weakref.ref(h)
        return (h.exp() * h).sum(), ref

    out, h_ref = build()
    gc.collect()
    assert h_ref() is not None  # the graph holds the intermediate until backward
    out.backward()
    gc.collect()
    assert h_ref() is None
    assert out.grad_fn.inputs == ()


def test_retained_graph_keeps_intermediates():
    x = nr.tensor(np.ones(3), requires_grad=True)

    def build():
        h = x * 2
        return (h * h).sum(), weakref.ref(h)

    out, h_ref = build()
    out.backward(retain_graph=True)
    gc.collect()
    assert h_ref() is not None


def test_backward_with_an_explicit_gradient_and_errors():
    x = nr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.backward(nr.tensor([1.0, 0.0, 2.0]))
    assert x.grad.tolist() == [2.0, 0.0, 12.0]
    with pytest.raises(RuntimeError, match=r"backward: grad can be omitted only for a scalar output, not shape \(3,\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"backward: grad shape \(2,\) must equal output shape \(3,\)"):
        (x * 2).backward(nr.ones(2))
    with pytest.raises(RuntimeError, match="backward: this tensor does not require grad"):
        nr.ones(2).sum().backward()


def test_create_graph_gives_a_differentiable_grad():
    """A gradient penalty: backward(create_graph=True) leaves x.grad in the graph."""
    data = np.array([0.5, -1.0, 2.0])
    x = nr.tensor(data, requires_grad=True)
    (x.tanh() * x ** 2).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    (g * g).sum().backward()
    xt = torch.tensor(data, requires_grad=True)
    (gt,) = torch.autograd.grad((xt.tanh() * xt ** 2).sum(), [xt], create_graph=True)
    (gt * gt).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


def test_without_create_graph_gradients_do_not_require_grad():
    x = nr.tensor([1.0, 2.0], requires_grad=True)
    (x ** 3).sum().backward()
    assert not x.grad.requires_grad and x.grad.grad_fn is None
    (g,) = nr.grad((x ** 3).sum(), [x])
    assert not g.requires_grad


def test_grad_function():
    x = nr.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    y = nr.tensor(3.0, dtype="float64", requires_grad=True)
    h = x * y
    out1, out2 = (h * h).sum(), (x * 5).sum()
    gx, gy, gh = nr.grad([out1, out2], [x, y, h], retain_graph=True)
    np.testing.assert_allclose(gx.numpy(), 2 * 9 * x.numpy() + 5)
    assert gy.item() == pytest.approx(2 * 3 * 5)
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())
    assert x.grad is None and y.grad is None  # nr.grad leaves .grad alone
    (gx2,) = nr.grad(h, x, grad_outputs=nr.tensor([1.0, -1.0], dtype="float64"))
    assert gx2.tolist() == [3.0, -3.0]


def test_grad_errors():
    x = nr.tensor(1.0, requires_grad=True)
    z = nr.tensor(1.0, requires_grad=True)
    with pytest.raises(RuntimeError, match="grad: an input is not used to compute the outputs; pass allow_unused=True"):
        nr.grad(x * 2, [x, z])
    gx, gz = nr.grad(x * 2, [x, z], allow_unused=True)
    assert gx.item() == 2.0 and gz is None
    with pytest.raises(RuntimeError, match=r"grad: grad_outputs is needed for a non-scalar output of shape \(2,\)"):
        nr.grad(nr.ones(2, requires_grad=True) * 2, [x])
    with pytest.raises(RuntimeError, match="grad: an output does not require grad"):
        nr.grad(nr.ones(1), [x])
    with pytest.raises(RuntimeError, match="grad: an input does not require grad"):
        nr.grad(x * 2, [nr.ones(1)])


def test_hessian_by_rows_matches_torch():
    data = np.array([0.2, -0.4, 0.9])

    def f(v, lib):
        return (lib.exp(v[0] * v[1]) + v[2] ** 3 * v[0]).sum() if lib is torch else (nr.exp(v[0] * v[1]) + v[2] ** 3 * v[0]).sum()

    x = nr.tensor(data, requires_grad=True)
    (g,) = nr.grad(f(x, nr), [x], create_graph=True)
    rows = [nr.grad(g[i], [x], retain_graph=True)[0].numpy() for i in range(3)]
    want = torch.autograd.functional.hessian(lambda v: f(v, torch), torch.tensor(data))
    np.testing.assert_allclose(np.stack(rows), want.numpy(), rtol=1e-12)


def test_engine_checks_gradient_shapes():
    class Wrong(nr.Function):
        def forward(self, a):
            return a.sum()

        def backward(self, g):
            return g  # should be broadcast back to the input's shape

    x = nr.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Wrong.backward returned a gradient of shape \(\) for input 0 of shape \(3,\)"):
        Wrong.apply(x).backward()


def test_function_may_return_none_for_inputs_without_gradient():
    class ScaleBy(nr.Function):
        def forward(self, a, s):
            return a * s

        def backward(self, g):
            a, s = self.inputs
            return g * s, None

    x, s = nr.tensor([1.0, 2.0], requires_grad=True), nr.tensor([3.0, 4.0], requires_grad=True)
    ScaleBy.apply(x, s).sum().backward()
    assert x.grad.tolist() == [3.0, 4.0] and s.grad is None


def test_grad_mode_is_per_thread():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        with nr.no_grad():
            inside.set()
            release.wait(5)
            seen["worker"] = nr.is_grad_enabled()

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(5)
    seen["main"] = nr.is_grad_enabled()
    release.set()
    t.join()
    assert seen == {"main": True, "worker": False}


def test_constants_do_not_join_the_graph():
    x = nr.tensor([1.0, 2.0], requires_grad=True)
    c = nr.tensor([3.0, 4.0])
    y = x * c
    assert y.requires_grad and not (c * c).requires_grad
    y.sum().backward()
    assert c.grad is None and x.grad.tolist() == [3.0, 4.0]


def test_backward_that_reads_its_own_output_after_the_consumer_was_freed():
    """Regression: Div's backward uses its output; the Mul node that consumed it runs (and is
    freed) first, and the engine must keep that output alive until Div has run."""
    x = nr.tensor([1.0, 2.0], requires_grad=True)
    b = nr.tensor([3.0, 4.0], requires_grad=True)
    ((x / b) * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 / 3, 0.5], rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), [-2 / 9, -0.25], rtol=1e-6)
