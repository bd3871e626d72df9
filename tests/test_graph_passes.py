"""Each graph pass: the graph before and after, and the same results end to end."""
import numpy as np

import neurona as nr
from neurona.graph import Program, jit, trace_graph
from neurona.graph.passes import (MemoryPlan, common_subexpression_elimination, constant_folding,
                                  dead_code_elimination, elementwise_fusion, optimize, small_matmul_fusion)

rng = np.random.default_rng(0)


def _run(graph, *args, plan=False):
    prog = Program(graph, MemoryPlan(graph) if plan else None)
    outs, _ = prog.run([a.data for a in args])
    return outs


def test_dce_before_after_and_equivalence():
    def f(x):
        unused = nr.exp(x) * 3  # noqa: F841 - the dead branch
        return (x * 2).sum()

    x = nr.tensor(rng.standard_normal(4).astype(np.float32))
    g = trace_graph(f, x)
    after = dead_code_elimination(g)
    assert g.op_types() == ["Exp", "Mul", "Mul", "Sum"]
    assert after.op_types() == ["Mul", "Sum"]
    np.testing.assert_allclose(_run(after, x)[0], _run(g, x)[0])
    np.testing.assert_allclose(_run(after, x)[0], f(x).numpy())


def test_constant_folding_before_after_and_equivalence():
    def f(x):
        k = nr.exp(nr.tensor(1.0)) * 2.0 + 1.0  # known before any input arrives
        return x * k

    x = nr.tensor(rng.standard_normal(3).astype(np.float32))
    g = trace_graph(f, x)
    after = constant_folding(g)
    assert g.op_types() == ["Exp", "Mul", "Add", "Mul"]
    assert after.op_types() == ["Mul"]
    np.testing.assert_allclose(_run(after, x)[0], f(x).numpy(), rtol=1e-6)


def test_cse_before_after_and_equivalence():
    def f(x, y):
        return nr.exp(x @ y) + nr.exp(x @ y) * 2

    x, y = nr.tensor(rng.standard_normal((2, 3)).astype(np.float32)), nr.tensor(rng.standard_normal((3, 2)).astype(np.float32))
    g = trace_graph(f, x, y)
    after = common_subexpression_elimination(g)
    assert g.op_types() == ["MatMul", "Exp", "MatMul", "Exp", "Mul", "Add"]
    assert after.op_types() == ["MatMul", "Exp", "Mul", "Add"]
    np.testing.assert_allclose(_run(after, x, y)[0], f(x, y).numpy(), rtol=1e-6)


def test_fusion_before_after_and_equivalence():
    def f(x, b):
        h = nr.relu(x * 0.5 + b)
        return nr.sigmoid(h) * nr.tanh(h) - nr.sqrt(h * h + 1.0)

    x = nr.tensor(rng.standard_normal((64, 32)).astype(np.float32) * 3)
    b = nr.tensor(rng.standard_normal(32).astype(np.float32))
    g = dead_code_elimination(trace_graph(f, x, b))
    after = elementwise_fusion(g)
    assert g.op_types() == ["Mul", "Add", "LeakyReLU", "Sigmoid", "Tanh", "Mul", "Mul", "Add", "Sqrt", "Sub"]
    assert after.op_types() == ["Fused"]
    assert after.nodes[0].inner == ("Mul", "Add", "LeakyReLU", "Sigmoid", "Tanh", "Mul", "Mul", "Add", "Sqrt", "Sub")
    np.testing.assert_allclose(_run(after, x, b)[0], f(x, b).numpy(), rtol=1e-5, atol=1e-6)


def test_fusion_splits_relu_scale_into_the_gradient_kernel():
    """relu's saved 0/1 scale is recomputed from x inside the backward's fused kernel."""
    def f(x, b):
        y = nr.relu(x + b)
        return nr.grad((y * y).sum(), [x])[0]

    x = nr.tensor(rng.standard_normal((8, 4)).astype(np.float32), requires_grad=True)
    b = nr.tensor(rng.standard_normal(4).astype(np.float32))
    g = optimize(trace_graph(f, x, b))
    assert "LeakyReLU" not in g.op_types()
    assert any("LeakyReLU.scale" in n.inner for n in g.nodes if n.op == "Fused")
    np.testing.assert_allclose(_run(g, x, b)[0], f(x, b).numpy(), rtol=1e-6)


def test_memory_plan_reuses_buffers_and_keeps_results():
    def f(x, w1, w2, w3):
        h = nr.relu(x @ w1)
        h = nr.relu(h @ w2)
        return (h @ w3).sum()

    args = [nr.tensor(rng.standard_normal(s).astype(np.float32)) for s in [(32, 64), (64, 64), (64, 64), (64, 8)]]
    g = optimize(trace_graph(f, *args))
    plan = MemoryPlan(g)
    s = plan.stats
    # the second relu output reuses the first matmul's buffer, and so on
    assert s["buffers"] < s["planned_nodes"]
    assert s["peak_bytes"] <= s["peak_bytes_no_reuse"] < s["all_intermediates_bytes"]
    first = _run(g, *args, plan=True)[0]
    np.testing.assert_allclose(first, _run(g, *args)[0], rtol=1e-6)
    np.testing.assert_allclose(_run(g, *args, plan=True)[0], first)  # the arena is reused safely
    np.testing.assert_allclose(first, f(*args).numpy(), rtol=1e-5)


def test_jit_without_fusion_gives_the_same_numbers():
    def f(x):
        return (nr.exp(-x * x) * 3 + x).sum()

    x = nr.tensor(rng.standard_normal(10).astype(np.float32))
    a, b = jit(f)(x), jit(f, fuse=False)(x)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_random_ops_are_neither_folded_nor_merged():
    # Dropout of a constant must still draw at every run, and two dropouts of one input are two
    # masks: `Function.random` keeps constant folding and CSE away from them.
    g = trace_graph(lambda x: nr.dropout(nr.ones((50, 50)), 0.5) + nr.dropout(x, 0.5) + nr.dropout(x, 0.5),
                    nr.ones((50, 50)))
    assert g.op_types().count("Dropout") == 3
    assert constant_folding(g).op_types().count("Dropout") == 3
    assert common_subexpression_elimination(g).op_types().count("Dropout") == 3
    program = Program(optimize(g))
    a = program.run([np.ones((50, 50), np.float32)])[0][0]
    b = program.run([np.ones((50, 50), np.float32)])[0][0]
    assert not np.array_equal(a, b)


def test_fused_loop_kernel_falls_back_to_the_ufunc_for_strided_inputs():
    # A fused group over arrays of one shape runs as a flat loop on contiguous arrays; a
    # transposed (strided) input takes the ufunc path, with the same values.
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    f = jit(lambda a, b: nr.sqrt(a.T * 2.0 + 1.0) * b - 0.5)
    expected = np.sqrt(a.T * 2 + 1) * b - 0.5
    np.testing.assert_allclose(f(nr.tensor(a), nr.tensor(b)).numpy(), expected, rtol=1e-6)
    g = jit(lambda x, y: nr.sqrt(x * 2.0 + 1.0) * y - 0.5)
    np.testing.assert_allclose(g(nr.tensor(a.T.copy()), nr.tensor(b)).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(g(nr.tensor(a.T), nr.tensor(b)).numpy(), expected, rtol=1e-6)  # a strided argument
    assert "Fused" in g.graphs()[1].op_types()


def test_small_matmul_fusion_before_after_and_equivalence():
    # A small product and its elementwise reader (a fused chain or a single op) become one loop;
    # bias shapes (n,), (1, n), (m, 1) and a scalar, a narrow product (2 columns), a transposed
    # operand, and a product read twice (it stays alone) all give the unfused values.
    def f(x, w1, b1, w2, b2, c, w3):
        h = nr.relu(x @ w1 + b1)                    # wide, a fused chain as epilogue
        q = h @ w2 + b2                             # narrow, a single op (Add) as epilogue
        r = (h @ w3.T) * c + 0.5                    # transposed operand, an (m, 1) input, a scalar
        p = x @ w1                                  # read twice: no epilogue
        return q, r, p * 2.0 + p.sum()

    shapes = [(3, 5), (5, 16), (1, 16), (16, 2), (2,), (3, 1), (7, 16)]
    args = [nr.tensor(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    g = elementwise_fusion(trace_graph(f, *args))
    after = small_matmul_fusion(g)
    assert "MatMul" in g.op_types() and "MatMul" not in after.op_types()
    assert after.op_types().count("FusedMatMul") == 4
    for a, b in zip(_run(after, *args, plan=True), _run(g, *args)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    big = [nr.ones((64, 64)), nr.ones((64, 64))]
    assert small_matmul_fusion(trace_graph(lambda a, b: a @ b, *big)).op_types() == ["MatMul"]  # BLAS above MAX_MACS


def test_jit_small_mlp_forward_and_gradients_match_eager():
    w1 = nr.tensor(rng.standard_normal((4, 32)).astype(np.float32), requires_grad=True)
    w2 = nr.tensor(rng.standard_normal((32, 3)).astype(np.float32), requires_grad=True)
    x = nr.tensor(rng.standard_normal((8, 4)).astype(np.float32))

    def loss(x):
        out = nr.relu(x @ w1) @ w2
        return (out * out).mean()

    def step(x):
        out = loss(x)
        out.backward()
        return out

    f = jit(step)
    got = f(x).item()
    gw1, gw2 = w1.grad.numpy().copy(), w2.grad.numpy().copy()
    assert "FusedMatMul" in f.graphs()[1].op_types()
    w1.grad = w2.grad = None
    want = step(x).item()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(gw1, w1.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gw2, w2.grad.numpy(), rtol=1e-4, atol=1e-6)
