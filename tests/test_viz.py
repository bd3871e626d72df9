"""nr.viz: the circuit pictures of the course (values in green, gradients in red)."""
import re

import numpy as np
import pytest
import torch

import neurona as nr
from neurona import viz


def course_example():
    """f(x, y, z) = (x + y)·z at (−2, 5, −4): f = −12, gradients (−4, −4, 3)."""
    x = nr.tensor(-2.0, requires_grad=True, name="x")
    y = nr.tensor(5.0, requires_grad=True, name="y")
    z = nr.tensor(-4.0, requires_grad=True, name="z")
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    return f


def node_rows(source):
    """{tensor title: (value text, gradient text or None)} from the DOT text."""
    rows = {}
    for label in re.findall(r"label=<<TABLE.*?</TABLE>>", source):
        title = re.search(r"<B>(.*?)</B>", label).group(1)
        value = re.search(r'COLOR="darkgreen">(.*?)</FONT>', label).group(1)
        grad = re.search(r'COLOR="red3">(.*?)</FONT>', label)
        rows[title] = (value, grad.group(1) if grad else None)
    return rows


def test_course_example_values_and_gradients():
    src = viz.to_dot(course_example()).source
    assert node_rows(src) == {"f": ("-12", "1"), "q": ("3", "-4"), "x": ("-2", "-4"),
                              "y": ("5", "-4"), "z": ("-4", "3")}
    assert src.count("comment=Add") == 1 and src.count("comment=Mul") == 1
    assert src.count("->") == 6  # x, y -> + -> q;  q, z -> × -> f


def test_gradients_match_torch_for_the_sigmoid_neuron():
    """The sigmoid circuit of topic 2, every gradient against PyTorch's (intermediates too)."""
    w0, w1, w2, x0, x1 = 2.0, -3.0, -3.0, -1.0, -2.0
    tw = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (w0, w1, w2)]
    ts = tw[0] * x0 + tw[1] * x1 + tw[2]
    ts.retain_grad()
    tf = 1 / (1 + torch.exp(-ts))
    tf.backward()

    w = [nr.tensor(v, dtype="float64", requires_grad=True, name=n) for v, n in zip((w0, w1, w2), "abc")]
    s = w[0] * x0 + w[1] * x1 + w[2]
    s.name = "s"
    f = 1 / (1 + nr.exp(-s))
    f.name = "f"
    rows = node_rows(viz.to_dot(f).source)
    assert float(rows["f"][0]) == pytest.approx(tf.item(), abs=1e-4)
    for name, t in zip("abc", tw):
        assert float(rows[name][1]) == pytest.approx(t.grad.item(), abs=1e-4)
    assert float(rows["s"][1]) == pytest.approx(ts.grad.item(), abs=1e-4)
    sig = tf.item()
    assert float(rows["s"][1]) == pytest.approx(sig * (1 - sig), abs=1e-4)  # the course's σ(1−σ)


def test_grads_false_shows_values_only_and_drawing_leaves_grad_alone():
    f = course_example()
    src = viz.to_dot(f, grads=False).source
    assert "red3" not in src and "darkgreen" in src
    viz.to_dot(f)
    x, y = f._ctx.inputs[0]._ctx.inputs
    assert x.grad is None and y.grad is None  # nr.grad does not touch .grad
    f.backward()  # the graph is still whole after drawing with gradients
    assert (x.grad.item(), y.grad.item()) == (-4.0, -4.0)


def test_big_arrays_show_shape_and_dtype_and_nonscalar_output_uses_sum():
    nr.manual_seed(0)
    w = nr.randn(20, 3, requires_grad=True)
    w.name = "W"
    x = nr.tensor(np.arange(6.0).reshape(2, 3), dtype="float32", name="X")
    y = (x @ w.T).relu()
    src = viz.to_dot(y).source
    rows = node_rows(src)
    assert rows["W"] == ("float32 (20, 3)", "float32 (20, 3)")
    assert rows["X"][1] is None  # a constant: no gradient
    assert "comment=MatMul" in src


def test_format_array():
    assert viz.format_array(np.float64(0.19661193)) == "0.1966"
    assert viz.format_array(np.array([1.0, -2.5])) == "[ 1.  -2.5]"
    assert viz.format_array(np.int64(3)) == "3"
    assert viz.format_array(np.ones((2, 4), np.float64)) == "float64 (2, 4)"


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".png", b"\x89PNG"), (".dot", b"digraph")])
def test_draw_graph_writes_files(tmp_path, suffix, magic):
    path = viz.draw_graph(course_example(), tmp_path / "sub" / f"f{suffix}")
    data = path.read_bytes()
    assert path.exists() and len(data) > 100
    assert magic in data[:400]


def test_errors():
    f = course_example()
    with pytest.raises(ValueError, match="format"):
        viz.draw_graph(f, "/tmp/picture.unknownformat")
    f.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        viz.to_dot(f)


def test_import_neurona_does_not_import_graphviz():
    import subprocess
    import sys

    code = "import sys, neurona; print('graphviz' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
