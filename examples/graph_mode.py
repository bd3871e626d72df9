"""Graph mode, course topic 3: the TensorFlow-1 examples and a traced training step.

1. `pow(mul(2, 3), add(2, 3))` as a graph run by a Session (7776), drawn;
2. linear regression with placeholders X, Y, variables w, b and a gradient-descent
   `minimize`, 100 epochs over a synthetic line y = 2.5·x − 1 (plus noise);
3. an MLP training step (forward, backward, SGD-momentum update) traced with `nr.jit`, drawn
   before and after the optimisation passes, written for TensorBoard, and timed against eager.

Run `python examples/graph_mode.py [--out DIR] [--logdir DIR]`: the pictures go to out/graph_mode
by default (the ones in docs/img were made with `--out docs/img`); `tensorboard --logdir
out/tensorboard-graph-mode` then shows the traced step's graph.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import neurona as nr
from neurona import functional as F
from neurona import graph as G


def course_session(out: Path):
    with G.Graph().as_default() as g:
        x, y = 2, 3
        add_op = nr.add(x, y)
        mul_op = nr.mul(x, y)
        op3 = nr.pow(mul_op, add_op)
    with G.Session(g) as sess:
        print("pow(mul(2, 3), add(2, 3)) =", sess.run(op3), " ops:", g.op_types())
    print("  drawn to", G.draw(g, out / "graph-course-pow.svg", title="pow(mul(2, 3), add(2, 3))"))


def linear_regression(out: Path):
    rng = np.random.default_rng(0)
    xs = rng.uniform(0, 10, 50).astype(np.float32)
    ys = (2.5 * xs - 1.0 + rng.normal(0, 0.2, 50)).astype(np.float32)
    with G.Graph().as_default() as g:
        X = G.placeholder((), nr.float32, name="X")
        Y = G.placeholder((), nr.float32, name="Y")
        w = G.Variable(0.0, name="weights")
        b = G.Variable(0.0, name="bias")
        Y_predicted = X * w + b
        loss = (Y - Y_predicted) ** 2
        optimizer = G.GradientDescentOptimizer(learning_rate=0.01).minimize(loss)
        init = G.global_variables_initializer()
    t0 = time.perf_counter()
    with G.Session(g) as sess:
        sess.run(init)
        for _ in range(100):
            for x, y in zip(xs, ys):
                sess.run(optimizer, feed_dict={X: x, Y: y})
        w_out, b_out = sess.run([w, b])
    print(f"linear regression: w = {w_out:.3f} (true 2.5), b = {b_out:.3f} (true -1.0), "
          f"5,000 Session.run calls in {time.perf_counter() - t0:.2f} s")
    print("  drawn to", G.draw(g, out / "graph-linear-regression.svg", title="linear regression, with its gradient nodes"))


def traced_training_step(out: Path, logdir: Path):
    rng = np.random.default_rng(0)
    shapes = [(784, 256), (256,), (256, 10), (10,)]
    params = [nr.tensor(rng.standard_normal(s).astype(np.float32) * 0.05, requires_grad=True) for s in shapes]
    vel = [nr.zeros_like(p) for p in params]

    def step(x, y):
        w1, b1, w2, b2 = params
        loss = F.cross_entropy(F.relu(x @ w1 + b1) @ w2 + b2, y)
        loss.backward()
        with nr.no_grad():
            for p, v in zip(params, vel):
                v *= 0.9
                v += p.grad
                p -= 0.01 * v
                p.grad = None
        return loss

    traced = nr.jit(step)
    x = nr.tensor(rng.standard_normal((128, 784)).astype(np.float32))
    y = nr.tensor(rng.integers(0, 10, 128))
    first = traced(x, y)
    before, after = traced.graphs()
    print(f"traced step: {len(before.nodes)} ops traced, {len(after.nodes)} after the passes; "
          f"first loss {first.item():.4f}")
    print("  before:", G.draw(before, out / "graph-mode-before.svg", title="traced training step"))
    print("  after: ", G.draw(after, out / "graph-mode-after.svg", title="after DCE, folding, CSE, fusion"))
    print("  TensorBoard:", G.write_tensorboard(after, logdir))
    for name, fn in (("eager", step), ("jit", traced)):
        fn(x, y)
        t0 = time.perf_counter()
        for _ in range(20):
            fn(x, y)
        print(f"  {name:5s} {1e3 * (time.perf_counter() - t0) / 20:.2f} ms/step")
    print("  memory plan:", traced.memory_stats())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/graph_mode", help="folder for the SVG pictures")
    ap.add_argument("--logdir", default="out/tensorboard-graph-mode", help="TensorBoard event folder")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    course_session(out)
    linear_regression(out)
    traced_training_step(out, Path(args.logdir))


if __name__ == "__main__":
    main()
