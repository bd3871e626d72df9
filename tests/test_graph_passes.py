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
    frozen = a.T.copy()
    frozen.flags.writeable = False  # read-only (a buffer from elsewhere): not the loop's signature either
    np.testing.assert_allclose(g(nr.tensor(frozen), nr.tensor(b)).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(g(nr.tensor(a.T.copy()), nr.tensor(b)).numpy(), expected, rtol=1e-6)
    assert g.trace_count == 1


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


def test_a_chain_of_small_layers_is_one_kernel_with_the_layers_bits():
    """A small MLP's layers, each product feeding only the next, become one FusedMatMul whose
    kernel runs the layers' own loops: the same bits as the layers as separate nodes, and the
    unfused graph's values to float32 rounding. A (1, n) bias, a tanh and a batch of 3 ride along."""
    def mlp(x, w1, b1, w2, b2, w3, b3):
        return nr.tanh(nr.relu(x @ w1 + b1) @ w2 + b2) @ w3 + b3

    shapes = [(3, 4), (4, 16), (1, 16), (16, 16), (16,), (16, 2), (2,)]
    args = [nr.tensor(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    g = elementwise_fusion(trace_graph(mlp, *args))
    apart, chained = small_matmul_fusion(g, chains=False), small_matmul_fusion(g)
    assert apart.op_types() == ["FusedMatMul"] * 3 and chained.op_types() == ["FusedMatMul"]
    assert chained.nodes[0].inner == ("MatMul", "Add", "LeakyReLU", "MatMul", "Add", "Tanh", "MatMul", "Add")
    got = _run(chained, *args, plan=True)[0]
    np.testing.assert_array_equal(got, _run(apart, *args)[0])
    np.testing.assert_allclose(got, _run(g, *args)[0], rtol=1e-5, atol=1e-6)


def test_a_chain_stops_where_a_hidden_value_is_read_elsewhere_or_a_weight_is_made_between():
    rng2 = np.random.default_rng(3)
    args = [nr.tensor(rng2.standard_normal(s).astype(np.float32)) for s in [(2, 4), (4, 8), (8, 3)]]

    def shared(x, w1, w2):  # the hidden value is also returned
        h = nr.relu(x @ w1)
        return h @ w2, h

    def made_between(x, w1, w2):  # the second weight is computed after the first layer
        h = nr.relu(x @ w1)
        return h @ (w2 * 2.0)

    for f in (shared, made_between):
        g = elementwise_fusion(trace_graph(f, *args))
        after = small_matmul_fusion(g)
        assert after.op_types().count("FusedMatMul") == 2, f.__name__
        for a, b in zip(_run(after, *args, plan=True), _run(g, *args)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_narrow_product_above_the_loop_size_keeps_blas_and_fuses_its_epilogue():
    """A 2-column product of more than NARROW_MAX_MACS multiply-adds (a Q-network's last layer
    on a batch of 32) stays a BLAS call with its bias and activation run in place after it:
    one node, the unfused graph's bits; alone (no epilogue) it is left as the MatMul."""
    from neurona.graph.passes.matmul import NARROW_MAX_MACS

    args = [nr.tensor(rng.standard_normal(s).astype(np.float32)) for s in [(32, 128), (128, 2), (2,)]]
    assert 32 * 128 * 2 > NARROW_MAX_MACS
    g = elementwise_fusion(trace_graph(lambda h, w, b: nr.relu(h @ w + b), *args))
    after = small_matmul_fusion(g)
    assert after.op_types() == ["FusedMatMul"] and after.nodes[0].inner == ("MatMul", "Add", "LeakyReLU")
    np.testing.assert_array_equal(_run(after, *args, plan=True)[0], _run(g, *args)[0])
    alone = trace_graph(lambda h, w: h @ w, *args[:2])
    assert small_matmul_fusion(alone).op_types() == ["MatMul"]


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


def _train(opt_cls, jit_opts, steps=4, **opt_kw):
    """Weights of an MLP's shapes updated `steps` times by `opt_cls` from given gradients (jit_opts
    None: eager): the weights and the optimiser's slots. (Gradients are inputs, not computed by
    a backward: fusion also runs small products as loops, whose sums round differently from BLAS.)"""
    r = np.random.default_rng(7)
    shapes = [(6, 16), (16,), (16, 3), (3,)]
    ws = [nr.tensor(r.standard_normal(s).astype(np.float32) * 0.3, requires_grad=True) for s in shapes]
    opt = opt_cls(ws, **opt_kw)

    def step(*grads):
        for w, g in zip(ws, grads):
            w.grad = g * 1.0
        opt.step()
        return ws[0].sum()

    f = step if jit_opts is None else jit(step, **jit_opts)
    for _ in range(steps):
        f(*[nr.tensor(r.standard_normal(s).astype(np.float32)) for s in shapes])
    slots = [a.numpy().copy() for s in opt.state for a in s.values()]
    return [w.numpy().copy() for w in ws], slots, f


def test_fusion_with_several_outputs_runs_each_update_as_one_kernel():
    """Adam's new m, v and parameter (and SGD momentum's velocity and parameter) are written back,
    so each was its own kernel; the group with several outputs computes them in one pass, in
    place over the state. Same bits as the unfused graph and as the eager step."""
    from neurona.optim import SGD, Adam

    for cls, kw, n_out in ((Adam, {"learning_rate": 0.01}, 3), (SGD, {"learning_rate": 0.05, "momentum": 0.9}, 2)):
        fused_w, fused_s, f = _train(cls, {}, **kw)
        plain_w, plain_s, _ = _train(cls, {"fuse": False}, **kw)
        eager_w, eager_s, _ = _train(cls, None, **kw)
        for a, b, c in zip(fused_w + fused_s, plain_w + plain_s, eager_w + eager_s):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
        multi = [n for n in f.graphs()[1].nodes if n.op == "Fused" and len(n.outputs) > 1]
        assert len(multi) == 4 and all(len(n.outputs) == n_out for n in multi), cls
        assert f.memory_stats()["in_place_updates"] == 4 * n_out + 1  # and the step count


def test_fused_in_place_update_over_an_overlapping_input_matches_numpy():
    """An update written in place while another input overlaps the target (a shifted view of
    the same buffer): the compiled loop sees the overlap and the kernel falls back to buffered
    copies, with the values of the step done op by op."""
    from neurona.optim import SGD

    for momentum in (0.0, 0.9):  # one output (p) and two (velocity and p)
        p = nr.tensor(np.zeros((4, 8), np.float32), requires_grad=True)
        opt = SGD([p], learning_rate=0.5, momentum=momentum)

        def step(x):
            p.grad = x * 1.0
            opt.step()
            return p.sum()

        f = jit(step)
        f(nr.tensor(np.ones((4, 8), np.float32)))  # traced (run op by op); the replay below runs the graph
        buf = np.linspace(-1, 1, 40, dtype=np.float32)
        p.data = buf[8:].reshape(4, 8)  # state is read live at each call
        x = buf[:32].reshape(4, 8)  # 8 numbers before p, then p's rows 0-2: a loop in place
        # would read x[i] = p[i - 8] after writing it
        old_p, old_x = p.numpy().copy(), x.copy()
        v = opt.state[0]["velocity"].numpy().copy() if momentum else 0.0
        f(nr.tensor(x))
        assert f.trace_count == 1 and np.shares_memory(p.numpy(), buf)  # replayed, in place
        np.testing.assert_array_equal(p.numpy(), old_p + (np.float32(momentum) * v - np.float32(0.5) * old_x))


def test_fusion_folds_broadcast_into_its_elementwise_reader():
    """`broadcast_to` then an elementwise op: one kernel that broadcasts as it reads, and the
    gradient through it is the unfused graph's."""
    def f(a, m):
        y = nr.broadcast_to(a.reshape(5, 1), (5, 3)) * m
        return y, nr.grad((y * y).sum(), [a])[0]

    a = nr.tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True)
    m = nr.tensor(rng.standard_normal((5, 3)).astype(np.float32))
    g = trace_graph(f, a, m)
    opt = optimize(g)
    assert "BroadcastTo" in g.op_types() and "BroadcastTo" not in opt.op_types()
    for got, want in zip(_run(opt, a, m), _run(optimize(g, fuse=False), a, m)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    y, ga = f(a, m)
    np.testing.assert_allclose(_run(opt, a, m)[1], ga.numpy(), rtol=1e-6)


def test_scalar_group_runs_on_numpy_scalars_with_the_unfused_values():
    """A fused group of single numbers (Adam's bias correction) is evaluated on NumPy scalars:
    the unfused graph's bits, and nan/inf where Python's math would raise."""
    def f(t, x):
        return 1.0 - 0.9 ** (t + 1.0), nr.sqrt(x - 2.0) * 1.0, nr.log(x - 1.0) * 2.0

    args = [nr.tensor(np.array(4.0)), nr.tensor(np.array(1.0, np.float32))]
    with np.errstate(all="ignore"):
        g = trace_graph(f, *args)
        opt = optimize(g)
        got, want = _run(opt, *args), _run(optimize(g, fuse=False), *args)
    assert [n.op for n in opt.nodes] == ["Fused"] * 3 and all(v.shape == () for v in opt.outputs)
    for a, b in zip(got, want):
        assert a.shape == () and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert np.isnan(got[1]) and got[2] == -np.inf


def test_ops_declaring_an_array_method_run_as_that_method():
    """Reshape and Transpose declare `method`: the executor calls `a.reshape(shape)` /
    `a.transpose(axes)` directly (no Function object per call), with the values of forward."""
    from operator import methodcaller

    from neurona.graph.executor import make_kernel

    x = nr.tensor(rng.standard_normal((3, 4, 2)).astype(np.float32))
    f = lambda x: (x.transpose((2, 0, 1)).reshape((2, 12)) * 2.0)  # noqa: E731
    g = trace_graph(f, x)
    views = [n for n in g.nodes if n.cls is not None and n.cls.method is not None]
    assert [n.op for n in views] == ["Transpose", "Reshape"]
    assert all(isinstance(make_kernel(n), methodcaller) for n in views)
    np.testing.assert_array_equal(_run(optimize(g), x)[0], f(x).numpy())


def test_fused_loop_reads_a_column_per_row_without_the_ufunc():
    """An (m, 1) operand against (m, n) (a per-sample scale, as the TD error broadcast over the
    actions) is read once per row by the flat loop, with the unfused ops' bits, also beside a bias row."""
    from neurona.graph.passes import fusion

    x = nr.tensor(rng.standard_normal((6, 5)).astype(np.float32))
    c = nr.tensor(rng.standard_normal((6, 1)).astype(np.float32))
    b = nr.tensor(rng.standard_normal(5).astype(np.float32))
    g = trace_graph(lambda x, c, b: nr.relu(x * c + b) * 2.0, x, c, b)
    fused = elementwise_fusion(g)
    assert fused.op_types() == ["Fused"] and fusion._kind((6, 1), (6, 5)) == fusion.COL
    np.testing.assert_array_equal(_run(fused, x, c, b)[0], _run(g, x, c, b)[0])
    assert [k for k in fusion._kernels if k[0] == "loop" and fusion.COL in k[4] and fusion.ROW in k[4]]


def test_fused_loop_reads_a_bias_row_without_the_ufunc():
    """A bias of shape (n,) or (1, n) added to an (m, n) array (then relu): the flat loop runs over
    rows and reads the bias along each, with the unfused ops' bits; other broadcasting (a middle
    axis) still takes the ufunc."""
    from neurona.graph.passes import fusion

    x = nr.tensor(rng.standard_normal((6, 5)).astype(np.float32))
    for b_shape in [(5,), (1, 5)]:
        b = nr.tensor(rng.standard_normal(b_shape).astype(np.float32))
        g = trace_graph(lambda x, b: nr.relu(x * 2.0 + b), x, b)
        fused = elementwise_fusion(g)
        assert fused.op_types() == ["Fused"]
        np.testing.assert_array_equal(_run(fused, x, b)[0], _run(g, x, b)[0])
    rows = [k for k in fusion._kernels if k[0] == "loop" and fusion.ROW in k[4]]
    assert rows
    assert fusion._kind((2, 1, 5), (2, 3, 5)) is None and fusion._kind((5,), (6, 5)) == fusion.ROW


def test_small_group_hands_out_values_later_nodes_read():
    """Huber loss and its gradient on 32 residuals: values the backward reads again (|d|, the
    `|d| <= 1` mask) come out of the forward's kernel as extra outputs instead of making the
    chain stop there; same bits as the unfused graph. Large groups do not (their extra outputs
    would be new arrays at each run)."""
    from neurona.graph.passes.fusion import SMALL_MULTI

    def f(q, y):
        loss = nr.huber_loss(q, y)
        return loss, nr.grad(loss, [q])[0]

    for n in (32, SMALL_MULTI + 1):
        q = nr.tensor(rng.standard_normal(n).astype(np.float32) * 2, requires_grad=True)
        y = nr.tensor(rng.standard_normal(n).astype(np.float32))
        g = trace_graph(f, q, y)
        opt = optimize(g)
        multi = [node for node in opt.nodes if node.op == "Fused" and len(node.outputs) > 1]
        assert bool(multi) == (n == 32)
        for got, want in zip(_run(opt, q, y), _run(optimize(g, fuse=False), q, y)):
            np.testing.assert_array_equal(got, want)


def test_reductions_that_declare_their_ufunc_run_as_it_with_eager_bits():
    """Sum, and max/min without the tie mask (no gradient can flow), run as `np.<ufunc>.reduce`
    in the executor: the eager values bit for bit; a max that keeps its tie mask does not."""
    from neurona.graph.executor import _reduction

    x = nr.tensor(rng.standard_normal((7, 3)).astype(np.float32))

    def f(x):
        return x.sum(axis=0, keepdims=True), x.sum(axis=1), x.max(axis=1), x.min(axis=0, keepdims=True)

    with nr.no_grad():
        g = trace_graph(f, x)
        want = [t.numpy() for t in f(x)]
    assert all(_reduction(n) is not None for n in g.nodes)
    for got, w in zip(_run(g, x), want):
        np.testing.assert_array_equal(got, w)
    xg = nr.tensor(x.numpy(), requires_grad=True)
    assert _reduction(trace_graph(lambda x: x.max(axis=1), xg).nodes[0]) is None
