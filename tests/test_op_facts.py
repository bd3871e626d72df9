"""Graph mode reads what it knows about an op from the facts its Function declares
(`elementwise`, `ufunc`, `random`, `differentiable`), so a Function written outside the library
fuses, writes into planned buffers and stays unfolded like the built-in ones; and no module of
neurona.graph or neurona.saving dispatches on class-name strings."""
import ast
import pathlib

import numpy as np

import neurona as nr
from neurona.graph import jit, trace_graph
from neurona.graph.passes import common_subexpression_elimination, constant_folding, elementwise_fusion


class Softsign(nr.Function):
    elementwise = "({0} / (1.0 + abs({0})))"

    def forward(self, x):
        return x / (1 + np.abs(x))

    def backward(self, g):
        (x,) = self.inputs
        return g / (1 + nr.abs(x)) ** 2


class Hypot(nr.Function):
    """sqrt(a² + b²) as NumPy's ufunc: declares `ufunc`, so the executor may give it a buffer."""

    ufunc = "hypot"
    elementwise = "math.sqrt({0} * {0} + {1} * {1})"

    def forward(self, a, b):
        return np.hypot(a, b)

    def backward(self, g):
        a, b = self.inputs
        h = self.output()
        return g * a / h, g * b / h


class Noise(nr.Function):
    """x plus fresh uniform noise: `random = True` keeps it from being folded or merged."""

    random = True

    def forward(self, x):
        return x + nr.backend.generator(np).random(x.shape).astype(x.dtype)

    def backward(self, g):
        return g


class Sign(nr.Function):
    differentiable = False

    def forward(self, x):
        return np.sign(x)


def test_a_user_function_that_declares_its_expression_is_fused():
    f = jit(lambda x: Softsign.apply(x) * 2.0 + 1.0)
    x = nr.tensor([-3.0, -0.25, 0.0, 0.5, 4.0])
    np.testing.assert_allclose(f(x).numpy(), (Softsign.apply(x) * 2.0 + 1.0).numpy(), rtol=1e-6)
    traced, optimized = f.graphs()
    assert traced.op_types() == ["Softsign", "Mul", "Add"] and optimized.op_types() == ["Fused"]
    assert optimized.nodes[0].inner == ("Softsign", "Mul", "Add")


def test_a_declared_ufunc_lets_the_op_write_into_a_planned_buffer():
    @jit
    def f(a, b):
        h = Hypot.apply(a, b)
        return (h @ a).sum()

    a, b = nr.tensor(np.arange(9.0).reshape(3, 3)), nr.tensor(np.ones((3, 3)))
    want = (Hypot.apply(a, b) @ a).sum().item()
    f = jit(f.fn, fuse=False)
    assert f(a, b).item() == want and f(a, b).item() == want
    plan = f.memory_stats()
    assert plan["planned_nodes"] >= 2  # Hypot and MatMul (declared ufunc 'matmul') got buffers


def test_a_random_function_is_never_folded_or_merged():
    c = nr.ones(3)
    g = trace_graph(lambda x: Noise.apply(c) + Noise.apply(c) + x, nr.zeros(3))
    assert constant_folding(g).op_types().count("Noise") == 2
    assert common_subexpression_elimination(g).op_types().count("Noise") == 2
    f = jit(lambda x: Noise.apply(x))
    nr.manual_seed(0)
    first, second = f(nr.zeros(3)).numpy(), f(nr.zeros(3)).numpy()
    assert not np.array_equal(first, second)  # a replay draws anew


def test_a_function_declared_not_differentiable_never_links():
    x = nr.tensor([-2.0, 3.0], requires_grad=True)
    s = Sign.apply(x)
    assert not s.requires_grad and s.grad_fn is None and s.tolist() == [-1.0, 1.0]


def test_fusion_reads_declared_expressions_with_parameters():
    g = trace_graph(lambda x: nr.clip(nr.leaky_relu(x, 0.1) ** 2, -1.0, 3.0), nr.ones((2, 3)))
    assert elementwise_fusion(g).op_types() == ["Fused"]


def _dispatch_on_names(path):
    """(line, code) of every comparison or lookup of an op's or a class's name (`node.op`,
    `type(x).__name__`) against string constants: the class-name tables graph mode used to have."""
    tree = ast.parse(path.read_text())
    found = []

    def is_name(n):
        return isinstance(n, ast.Attribute) and n.attr in ("op", "__name__")

    def is_strings(n):
        if isinstance(n, ast.Constant):
            return isinstance(n.value, str)
        if isinstance(n, (ast.Tuple, ast.List, ast.Set)):
            return any(is_strings(e) for e in n.elts)
        if isinstance(n, ast.Dict):
            return any(is_strings(k) for k in n.keys if k is not None)
        return isinstance(n, ast.Name) and n.id.isupper()  # a module-level table

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(is_name(s) for s in sides) and any(is_strings(s) for s in sides):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Subscript) and is_name(node.slice):
            found.append((node.lineno, ast.unparse(node)))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args and is_name(node.args[0])):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_class_name_tables_in_graph_mode_or_saving():
    root = pathlib.Path(nr.__file__).parent
    offenders = {str(p.relative_to(root)): hits for folder in ("graph", "saving")
                 for p in sorted((root / folder).rglob("*.py")) if (hits := _dispatch_on_names(p))}
    assert offenders == {}
