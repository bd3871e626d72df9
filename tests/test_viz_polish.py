"""Computation-graph pictures say what the user wrote: no reshapes for a product of vectors,
relu drawn as relu, leaky relu with its slope."""
import pytest

import neurona as nr


def _gates(dot_source):
    import re

    return re.findall(r'f\d+ \[label="?([^"\]]+?)"? comment=(\w+)', dot_source)


def test_vector_product_draws_no_reshapes():
    w = nr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = nr.tensor([1.0, -1.0, -0.5])
    y = nr.relu(w @ x)  # 1 - 2 - 1.5 < 0: relu's zero slope shows
    assert _gates(nr.viz.to_dot(y).source) == [("relu", "LeakyReLU"), ("@", "MatMul")]
    full = _gates(nr.viz.to_dot(y, simplify=False).source)
    assert [name for _, name in full].count("Reshape") == 3  # w, and the product, to and from matrices


def test_simplify_keeps_reshapes_that_move_elements_and_the_output():
    x = nr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    gates = _gates(nr.viz.to_dot((x.reshape(4) * 2).reshape(1, 4)).source)
    assert [name for _, name in gates] == ["Reshape", "Mul", "Reshape"]  # 2×2 → 4 moves; the output stays


def test_leaky_relu_shows_its_slope():
    t = nr.tensor([-1.0, 2.0], requires_grad=True)
    assert _gates(nr.viz.to_dot(nr.leaky_relu(t, 0.2)).source)[0][0] == "leaky relu 0.2"
    assert _gates(nr.viz.to_dot(nr.relu(t)).source)[0][0] == "relu"


def test_gradients_still_drawn_after_skipping(tmp_path):
    w = nr.tensor([1.0, 2.0], requires_grad=True, name="w")
    y = w @ nr.tensor([3.0, -1.0])
    src = nr.viz.to_dot(y).source
    assert "<B>w</B>" in src and ">[ 3. -1.]<" in src  # dy/dw = x, drawn on w
    pytest.importorskip("graphviz")
    assert nr.viz.draw_graph(y, tmp_path / "g.dot").read_text().startswith("digraph")
