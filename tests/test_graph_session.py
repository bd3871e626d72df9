"""TensorFlow-1 style graph mode: the course's two examples, running only what fetches need,
feed checks, and the pictures (SVG/PNG and TensorBoard's GraphDef)."""
import struct

import numpy as np
import pytest

import neurona as nr
from neurona import graph as G
from neurona.autograd.function import Function


def test_course_example_pow_mul_add():
    with G.Graph().as_default() as g:
        x, y = 2, 3
        add_op = nr.add(x, y)
        mul_op = nr.mul(x, y)
        op3 = nr.pow(mul_op, add_op)
    assert sorted(g.op_types()) == ["Add", "Mul", "Pow"]
    with G.Session(g) as sess:
        assert sess.run(op3) == 7776
        assert sess.run([add_op, mul_op]) == [5, 6]


def test_course_linear_regression_recovers_slope_and_intercept():
    rng = np.random.default_rng(0)
    xs = rng.uniform(0, 10, 40).astype(np.float32)
    ys = (2.5 * xs - 1.0 + rng.normal(0, 0.1, 40)).astype(np.float32)
    with G.Graph().as_default() as g:
        X = G.placeholder((), nr.float32, name="X")
        Y = G.placeholder((), nr.float32, name="Y")
        w = G.Variable(0.0, name="weights")
        b = G.Variable(0.0, name="bias")
        Y_predicted = X * w + b
        loss = (Y - Y_predicted) ** 2
        optimizer = G.GradientDescentOptimizer(learning_rate=0.01).minimize(loss)
        init = G.global_variables_initializer()
    assert {"Mul", "Add", "Sub", "PowScalar", "Neg"} <= set(g.op_types())  # gradients are nodes too
    with G.Session(g) as sess:
        sess.run(init)
        for _ in range(100):
            for x, y in zip(xs, ys):
                sess.run(optimizer, feed_dict={X: x, Y: y})
        w_out, b_out = sess.run([w, b])
        assert abs(w_out - 2.5) < 0.05 and abs(b_out + 1.0) < 0.3
        sess.run(init)  # the initializer puts the variables back
        assert sess.run(w) == 0.0


class _Probe(Function):
    """Counts its forward calls: shows whether a branch ran."""

    calls = 0

    def forward(self, a):
        _Probe.calls += 1
        return a * 2


def test_unfetched_branches_are_not_executed():
    with G.Graph().as_default() as g:
        x = G.placeholder((3,), nr.float32, name="x")
        cheap = x + 1
        expensive = nr.exp(_Probe.apply(x)).sum()
    _Probe.calls = 0
    with G.Session(g) as sess:
        for _ in range(3):
            assert sess.run(cheap, feed_dict={x: np.ones(3, np.float32)}).tolist() == [2.0, 2.0, 2.0]
        assert _Probe.calls == 0 and sess.last_run_nodes == 1
        assert sess.run(expensive, feed_dict={x: np.zeros(3, np.float32)}) == pytest.approx(3.0)
        assert _Probe.calls == 1 and sess.last_run_nodes == 3
    # a placeholder only the unfetched branch reads needs no feed
    with G.Graph().as_default() as g2:
        a = G.placeholder((), nr.float32, name="a")
        unused = G.placeholder((), nr.float32, name="unused")
        out, _ = a * 3, unused * 5
    with G.Session(g2) as sess:
        assert sess.run(out, feed_dict={a: 2.0}) == 6.0


def test_feeds_are_checked():
    with G.Graph().as_default() as g:
        x = G.placeholder((2,), nr.float32, name="x")
        n = G.placeholder((), nr.int64, name="n")
        y = x * 2
        z = x * n
        other = nr.ones(2)
    with G.Session(g) as sess:
        with pytest.raises(ValueError, match=r"placeholder 'x' has shape \(3,\), but the placeholder's shape is \(2,\)"):
            sess.run(y, feed_dict={x: np.ones(3, np.float32)})
        with pytest.raises(ValueError, match="placeholder 'x' .* give it a value in feed_dict"):
            sess.run(y)
        with pytest.raises(TypeError, match="placeholder 'n' has dtype float64, but the placeholder's dtype is int64"):
            sess.run(z, feed_dict={x: np.ones(2, np.float32), n: np.float64(1.5)})
        with pytest.raises(ValueError, match="is not a placeholder"):
            sess.run(y, feed_dict={other: np.ones(2)})
        assert sess.run(y, feed_dict={x: [1.0, 2.0]}).tolist() == [2.0, 4.0]  # lists are cast
    with pytest.raises(ValueError, match="full shape"):
        with G.Graph().as_default():
            G.placeholder((None, 3))
    with pytest.raises(RuntimeError, match="no graph is being built"):
        G.placeholder((2,))


def _read_events(path):
    from tensorboardX.proto import event_pb2

    data = path.read_bytes()
    events, i = [], 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        e = event_pb2.Event()
        e.ParseFromString(data[i + 12:i + 12 + n])
        events.append(e)
        i += 12 + n + 4
    return events


def test_pictures_svg_png_and_tensorboard(tmp_path):
    from tensorboardX.proto import graph_pb2

    with G.Graph().as_default() as g:
        op3 = nr.pow(nr.mul(2, 3), nr.add(2, 3))
    dot = G.to_dot(g)
    for name in ("Add:0", "Mul:0", "int64[]"):
        assert name in dot
    svg = G.draw(g, tmp_path / "g.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "Pow" in svg
    assert G.draw(g, tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    G.write_tensorboard(g, tmp_path / "tb")
    (event_file,) = (tmp_path / "tb").iterdir()
    graph_events = [e for e in _read_events(event_file) if e.graph_def]
    gd = graph_pb2.GraphDef()
    gd.ParseFromString(graph_events[0].graph_def)
    ops = sorted(n.op for n in gd.node if n.op != "Const")
    assert ops == ["Add", "Mul", "Pow"]
    pow_node = next(n for n in gd.node if n.op == "Pow")
    assert list(pow_node.input) == ["Mul", "Add"]
    assert op3.item() == 7776


def test_before_and_after_optimisation_pictures(tmp_path):
    @G.jit
    def f(x, b):
        return nr.relu(x * 2.0 + b).sum()

    f(nr.ones((2, 3)), nr.ones(3))
    before, after = f.graphs()
    a = G.draw(before, tmp_path / "before.svg").read_text()
    b = G.draw(after, tmp_path / "after.svg").read_text()
    assert "LeakyReLU" in a and "Fused" in b and "Mul → Add → LeakyReLU" in b


def test_example_script_draws_before_and_after(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "examples" / "graph_mode.py"
    out = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--logdir", str(tmp_path / "tb")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "= 7776" in out.stdout and "w = 2.4" in out.stdout
    for name in ("graph-course-pow", "graph-linear-regression", "graph-mode-before", "graph-mode-after"):
        assert (tmp_path / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    assert any((tmp_path / "tb").iterdir())
