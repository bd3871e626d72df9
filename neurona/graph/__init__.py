"""Graph mode: static computation graphs over the same op library as eager mode.

Two styles, one IR (`neurona.graph.ir`):
* tracing, as `tf.function` / `jax.jit`: `nr.jit` records a Python function of tensors into a
  graph once per signature, optimises it and replays it (a whole training step included);
* TensorFlow 1: `placeholder`, `Variable` and ops inside `with Graph().as_default():` build a
  graph; `Session().run(fetches, feed_dict)` runs only what the fetches need.
The passes (`neurona.graph.passes`) are dead-code elimination, constant folding, CSE,
elementwise fusion (numba) and memory planning; `draw` renders a graph to DOT/SVG/PNG and
`write_tensorboard` to TensorBoard's graph format.
May import: neurona and its submodules; numba and graphviz/tensorboardX lazily.
"""
from .executor import Program
from .ir import Node, Value
from .jit import TracedFunction, function, jit, trace_graph
from .passes import optimize
from .session import (GradientDescentOptimizer, Graph, Operation, Session, Variable,
                      get_default_graph, global_variables_initializer, placeholder)
from .tracer import ConcretizationError
from .draw import draw, to_dot, write_tensorboard

__all__ = ["ConcretizationError", "GradientDescentOptimizer", "Graph", "Node", "Operation",
           "Program", "Session", "TracedFunction", "Value", "Variable", "draw", "function",
           "get_default_graph", "global_variables_initializer", "jit", "optimize", "placeholder",
           "to_dot", "trace_graph", "write_tensorboard"]
