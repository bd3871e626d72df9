"""Model-Agnostic Meta-Learning (Finn, Abbeel and Levine 2017).

Inner loop, per task: θ'ᵢ = θ − α ∇θ L_support(θ) (a few steps). Outer loop: θ ← θ − β ∇θ Σᵢ
L_query(θ'ᵢ). The outer gradient flows through the inner updates: with `first_order=False` the
inner gradients are computed with `create_graph=True`, so the meta-gradient contains the
Hessian-vector products of the true MAML gradient; with `first_order=True` they are constants
(FOMAML: the Hessian terms are dropped). `net(weights, x)` is any function of an explicit weight
list (see `neurona.meta.nets`).
May import: numpy, neurona, neurona.optim.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..autograd import grad, no_grad
from ..tensor import Tensor


def cross_entropy_loss(logits, y):
    return ops.cross_entropy(logits, y)


def mse(pred, y):
    return ops.mse_loss(pred, y)


class MAML:
    """Meta-learns the initial weights of `net` (a `neurona.meta.nets`-style network).

    inner_lr: α; inner_steps: gradient steps per task; first_order: FOMAML;
    loss: `loss(outputs, targets)` (cross-entropy for classification, `mse` for regression).
    meta_optimizer: a neurona optimiser (e.g. `Adam(1e-3)`), bound to the weights here.

    >>> import neurona as nr
    >>> from neurona.meta.nets import FunctionalMLP
    >>> maml = MAML(FunctionalMLP((1, 8, 1)), loss=mse, inner_lr=0.01, seed=0)
    >>> task = (np.ones((4, 1), "float32"), np.ones((4, 1), "float32"))
    >>> loss = maml.meta_step([(task, task)])
    >>> isinstance(loss, float)
    True
    """

    def __init__(self, net, loss=cross_entropy_loss, inner_lr=0.4, inner_steps=1, first_order=False,
                 meta_optimizer=None, seed=0):
        from ..optim import Adam

        self.net, self.loss = net, loss
        self.inner_lr, self.inner_steps, self.first_order = float(inner_lr), int(inner_steps), bool(first_order)
        self.weights = net.init(seed)
        self.dtype = self.weights[0].numpy().dtype
        self.meta_optimizer = meta_optimizer or Adam(learning_rate=1e-3)
        self.meta_optimizer.bind(self.weights)

    def adapt(self, x, y, steps=None, weights=None, create_graph=None):
        """The fast weights after `steps` inner gradient steps on (x, y) from `weights` (default:
        the meta-learned initial weights)."""
        fast = self.weights if weights is None else weights
        create_graph = (not self.first_order) if create_graph is None else create_graph
        x, y = _t(x, self.dtype), _t(y, self.dtype)
        for _ in range(self.inner_steps if steps is None else steps):
            loss = self.loss(self.net(fast, x), y)
            # the graph stays: the outer gradient flows back through it (through θ' = θ − α·g
            # even when g is a constant, first-order)
            grads = grad(loss, fast, create_graph=create_graph, retain_graph=True)
            fast = [w - self.inner_lr * g for w, g in zip(fast, grads)]
        return fast

    def meta_loss(self, tasks):
        """Mean query loss over `tasks` [((support_x, support_y), (query_x, query_y)), ...] after
        adaptation: a Tensor whose gradient with respect to `self.weights` is the meta-gradient."""
        total = None
        for (sx, sy), (qx, qy) in tasks:
            fast = self.adapt(sx, sy)
            loss = self.loss(self.net(fast, _t(qx, self.dtype)), _t(qy, self.dtype))
            total = loss if total is None else total + loss
        return total / len(tasks)

    def meta_gradient(self, tasks):
        """∇θ of `meta_loss(tasks)` as a list of Tensors (one per weight)."""
        return list(grad(self.meta_loss(tasks), self.weights))

    def meta_step(self, tasks):
        """One outer update on a meta-batch of tasks; returns the meta-loss before it."""
        loss = self.meta_loss(tasks)
        self.meta_optimizer.zero_grad()
        loss.backward()
        self.meta_optimizer.step()
        return float(loss.item())

    def predict(self, support, query_x, steps=None):
        """Adapt on `support` = (x, y), then the network's outputs on `query_x` (NumPy)."""
        fast = [w.detach() for w in self.weights]
        for w in fast:
            w.requires_grad_(True)
        fast = self.adapt(*support, steps=steps, weights=fast, create_graph=False)
        with no_grad():
            return self.net(fast, _t(query_x, self.dtype)).numpy()


def _t(a, dtype):
    """A Tensor of `a`; float data in the weights' dtype (integer labels stay integers)."""
    if isinstance(a, Tensor):
        return a
    a = np.asarray(a)
    return Tensor(a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a)
