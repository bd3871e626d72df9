"""Learning to learn by gradient descent by gradient descent (Andrychowicz et al. 2016): a
coordinate-wise LSTM m with weights φ reads each coordinate's gradient and writes that
coordinate's update, θ_{t+1} = θ_t + g_t, [g_t, h_{t+1}] = m(∇_t, h_t, φ). One small LSTM is
shared by every coordinate of the learner (a batch of coordinates), so it applies to learners
of any size. φ is trained by truncated unrolled optimisation: L(φ) = Σ_t f(θ_t) over `unroll`
steps of the learner's training, backpropagated through the updates, then the learner continues
from where it stopped (truncated BPTT). As in the paper, the learner's gradients ∇_t enter as
inputs without their own derivatives (∂∇_t/∂φ = 0) unless `second_order=True`, which keeps them
and gives the exact gradient of L (what the tests check against finite differences).
May import: numpy, neurona, neurona.optim, neurona.datasets.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..autograd import grad, no_grad
from ..tensor import Tensor
from .lstm import LSTMCell


def preprocess_gradients(g, p=10.0):
    """The paper's input scaling (appendix A): (log|g|/p, sign g) when |g| ≥ e^−p, else (−1, e^p·g);
    gradients of wildly different sizes become inputs of similar size. g: (n, 1) → (n, 2)."""
    big = Tensor((np.abs(g.numpy()) >= np.exp(-p)).astype(g.numpy().dtype))
    sign = Tensor(np.sign(g.numpy()))
    safe = ops.maximum(ops.abs(g), float(np.exp(-p)))
    first = big * (ops.log(safe) / p) + (1 - big) * -1.0
    second = big * sign + (1 - big) * (g * float(np.exp(p)))
    return ops.concatenate([first, second], axis=1)


class LSTMOptimizer:
    """The coordinate-wise LSTM optimiser: `step(grads, state) -> (updates, state)` on (n, 1) columns.

    >>> import neurona as nr
    >>> opt = LSTMOptimizer(hidden=8)
    >>> upd, state = opt.step(nr.ones((5, 1)), opt.init_state(5))
    >>> upd.shape
    (5, 1)
    """

    def __init__(self, hidden=20, output_scale=0.1, preprocess=True, seed=0, dtype="float32"):
        rng = np.random.default_rng(seed + 1)
        self.preprocess, self.output_scale, self.dtype = preprocess, float(output_scale), dtype
        self.cell = LSTMCell(2 if preprocess else 1, hidden, seed=seed, dtype=dtype)
        self.head_w = Tensor((rng.standard_normal((hidden, 1)) * 0.1).astype(dtype), requires_grad=True)
        self.head_b = Tensor(np.zeros(1, dtype), requires_grad=True)
        self.weights = self.cell.weights + [self.head_w, self.head_b]

    def init_state(self, n):
        return self.cell.zero_state(n)

    def step(self, grads, state):
        x = preprocess_gradients(grads) if self.preprocess else grads
        h, c = self.cell(x, state)
        return (ops.matmul(h, self.head_w) + self.head_b) * self.output_scale, (h, c)


def _flat(tensors):
    return ops.concatenate([t.reshape(-1, 1) for t in tensors], axis=0)


def _unflat(column, like):
    out, i = [], 0
    for t in like:
        out.append(column[i:i + t.size].reshape(t.shape))
        i += t.size
    return out


def unroll(optimizer, problem, params, state, steps, second_order=False):
    """Run the learned optimiser for `steps` steps; returns (L = mean_t f(θ_t), params, state,
    the losses as floats). L is differentiable with respect to the optimiser's weights."""
    total, losses = None, []
    for _ in range(steps):
        loss = problem.loss(params)
        losses.append(float(loss.item()))
        total = loss if total is None else total + loss
        grads = grad(loss, params, create_graph=second_order, retain_graph=True)
        update, state = optimizer.step(_flat(grads), state)
        params = [p + u for p, u in zip(params, _unflat(update, params))]
    return total / steps, params, state, losses


class QuadraticProblem:
    """f(θ) = ‖Wθ − y‖² with W (d, d) and y (d,) drawn from N(0, 1), θ₀ ~ N(0, 1) (the paper's
    10-dimensional quadratics)."""

    def __init__(self, dim=10, seed=0, dtype="float32"):
        rng = np.random.default_rng(seed)
        self.w = Tensor(rng.standard_normal((dim, dim)).astype(dtype))
        self.y = Tensor(rng.standard_normal((dim, 1)).astype(dtype))
        self.theta0 = rng.standard_normal((dim, 1)).astype(dtype)

    def init_params(self):
        return [Tensor(self.theta0.copy(), requires_grad=True)]

    def loss(self, params):
        r = ops.matmul(self.w, params[0]) - self.y
        return ops.sum(r * r)


class MLPProblem:
    """Cross-entropy of an MLP 64 → hidden (sigmoid) ×layers → 10 on random minibatches of
    scikit-learn's 8×8 digits (the paper trained on MNIST with one hidden layer of 20)."""

    _data = None

    def __init__(self, hidden=20, layers=1, batch_size=128, seed=0):
        if MLPProblem._data is None:
            from ..datasets import digits

            (x, y), _ = digits(test_split=0.2, seed=0)
            MLPProblem._data = (x.reshape(len(x), -1) / 16.0, y)
        self.x, self.y = MLPProblem._data
        self.rng = np.random.default_rng(seed)
        sizes = [64] + [hidden] * layers + [10]
        self.init = [(self.rng.standard_normal((a, b)) * np.sqrt(1.0 / a)).astype(np.float32)
                     for a, b in zip(sizes[:-1], sizes[1:])]
        self.init_b = [np.zeros(b, np.float32) for b in sizes[1:]]
        self.batch_size = batch_size

    def init_params(self):
        out = []
        for w, b in zip(self.init, self.init_b):
            out += [Tensor(w.copy(), requires_grad=True), Tensor(b.copy(), requires_grad=True)]
        return out

    def loss(self, params):
        idx = self.rng.choice(len(self.x), self.batch_size, replace=False)
        h = Tensor(self.x[idx])
        for i in range(0, len(params) - 2, 2):
            h = ops.sigmoid(ops.matmul(h, params[i]) + params[i + 1])
        return ops.cross_entropy(ops.matmul(h, params[-2]) + params[-1], Tensor(self.y[idx]))


def meta_train(optimizer, make_problem, n_problems=20, steps=100, unroll_steps=20, learning_rate=1e-2,
               second_order=False, seed=0, log=None):
    """Train the LSTM optimiser with Adam on `n_problems` problems from `make_problem(seed)`, each
    optimised for `steps` steps in truncations of `unroll_steps`; returns the meta-losses."""
    from ..optim import Adam

    meta = Adam(optimizer.weights, learning_rate=learning_rate)
    history = []
    for k in range(n_problems):
        problem = make_problem(seed + k)
        params, state = problem.init_params(), None
        state = optimizer.init_state(sum(p.size for p in params))
        for _ in range(steps // unroll_steps):
            meta_loss, params, state, _ = unroll(optimizer, problem, params, state, unroll_steps, second_order)
            meta.zero_grad()
            meta_loss.backward()
            meta.step()
            history.append(float(meta_loss.item()))
            # truncation: the learner and the LSTM's memory go on as constants
            params = [p.detach().requires_grad_(True) for p in params]
            state = tuple(s.detach() for s in state)
        if log:
            log(f"problem {k + 1}/{n_problems}: last meta-loss {history[-1]:.4f}")
    return history


def run_learned(optimizer, problem, steps):
    """Losses f(θ_t) of `problem` optimised for `steps` steps by the learned optimiser."""
    params = problem.init_params()
    state = optimizer.init_state(sum(p.size for p in params))
    losses = []
    for _ in range(steps):
        loss = problem.loss(params)
        losses.append(float(loss.item()))
        grads = grad(loss, params)
        with no_grad():
            update, state = optimizer.step(_flat(grads), state)
        params = [(p + u).detach().requires_grad_(True) for p, u in zip(params, _unflat(update, params))]
    return losses


def run_baseline(optimizer_class, problem, steps, **kwargs):
    """Losses of `problem` optimised by a neurona optimiser (SGD, RMSprop, Adam, ...)."""
    params = problem.init_params()
    opt = optimizer_class(params, **kwargs)
    losses = []
    for _ in range(steps):
        loss = problem.loss(params)
        losses.append(float(loss.item()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses
