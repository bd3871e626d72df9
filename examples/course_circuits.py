"""The circuits of course topic 2, drawn with their values (green) and gradients (red).

  f(x, y, z) = (x + y)·z at (−2, 5, −4):  f = −12, ∂f/∂(x, y, z) = (−4, −4, 3)
  the sigmoid neuron 1/(1 + e^−(w0·x0 + w1·x1 + w2)) at w = (2, −3, −3), x = (−1, −2):
  f = σ(1) ≈ 0.73, and the gradient at the gate's input is σ(1 − σ) ≈ 0.20

Run `python examples/course_circuits.py [--out DIR]`; it prints where each picture went.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import neurona as nr


def _named(value, name, requires_grad=True):
    return nr.tensor(value, dtype="float64", requires_grad=requires_grad, name=name)


def course_example():
    """f = (x + y)·z at (−2, 5, −4), the first worked example of backpropagation."""
    x, y, z = _named(-2.0, "x"), _named(5.0, "y"), _named(-4.0, "z")
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    return f


def sigmoid_neuron():
    """The 2-input sigmoid neuron written gate by gate: *, +, −x, exp, +1, 1/x."""
    w0, w1, w2 = _named(2.0, "w0"), _named(-3.0, "w1"), _named(-3.0, "w2")
    x0, x1 = _named(-1.0, "x0"), _named(-2.0, "x1")
    s = w0 * x0 + w1 * x1 + w2
    s.name = "w·x + b"
    f = 1 / (1 + nr.exp(-s))
    f.name = "σ"
    return f


def draw(out_dir, fmt="png"):
    """Draw both circuits into `out_dir`; returns the paths written."""
    out_dir = Path(out_dir)
    return [nr.viz.draw_graph(course_example(), out_dir / f"circuit_course_example.{fmt}"),
            nr.viz.draw_graph(sigmoid_neuron(), out_dir / f"circuit_sigmoid_neuron.{fmt}")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="directory for the pictures (default: out/)")
    parser.add_argument("--format", default="png", choices=["png", "svg", "pdf"])
    args = parser.parse_args(argv)
    for path in draw(args.out, args.format):
        print(f"saved {path}")


if __name__ == "__main__":
    main()
