"""The optimisers of course topic 4: SGD (momentum, Nesterov), Adagrad, RMSprop, Adam.

Each `update` works in place with Tensor ops (under the `no_grad` of `Optimizer.step`) on p
(the parameter), g (its gradient) and the state tensors named in `slots`; `c` holds this step's
scalars (`c["lr"]`, Adam's bias corrections) as 0-d tensors of p's dtype, so that a traced step
reads them live. The formulas are the course's (CS231n notation: x the parameter, dx its
gradient, lr the learning rate).

SGD, Adagrad and Adam also take row-sparse gradients (`Embedding(sparse=True)`) in
`update_sparse`: the rows that the gradient names are updated with the same formulas, written on
the raw arrays (a sparse gradient never reaches a traced step, see neurona.ops.sparse), and every
other row is left alone. For plain SGD and Adagrad that is exactly the dense update (a zero
gradient row changes nothing); for momentum and Adam's moments it is the "lazy" update of
torch.optim.SparseAdam and of TF/Keras' sparse momentum: an untouched row's slots do not decay.
May import: neurona.backend (and its fused_update kernels), neurona.ops, neurona.autograd.tracing,
neurona.optim.optimizer.
"""
from __future__ import annotations

from .. import backend as B
from .. import ops
from ..autograd.tracing import is_tracing
from ..backend.kernels import fused_update
from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Plain:     x −= lr·dx
    Momentum:  v = μ·v − lr·dx;   x += v
    Nesterov:  v = μ·v − lr·dx;   x += μ·v − lr·dx   (the look-ahead form used by Keras)

    With a constant learning rate these are exactly PyTorch's updates (its buffer is −v/lr).
    `decay` gives lr_t = lr / (1 + decay·iterations), as in the course's Keras example
    `SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)`.

    >>> import neurona as nr
    >>> w = nr.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step(); w.tolist()
    [0.800000011920929, 1.600000023841858]
    """

    def __init__(self, params=None, learning_rate=0.01, momentum=0.0, nesterov=False, decay=0.0, **kwargs):
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slots = ("velocity",) if self.momentum else ()
        super().__init__(params, learning_rate=learning_rate, decay=decay, **kwargs)

    def update(self, p, g, state, c):
        lr = c["lr"]
        v = state["velocity"] if self.momentum else None
        if not is_tracing() and fused_update.sgd(p.data, g.data, None if v is None else v.data, lr.data,
                                                  self.momentum, self.nesterov):
            return  # one compiled pass, the same bits as the Tensor ops below
        if not self.momentum:
            p -= lr * g
            return
        v = state["velocity"]
        v *= self.momentum
        v -= lr * g
        if self.nesterov:
            p += self.momentum * v - lr * g
        else:
            p += v

    def update_sparse(self, p, g, state, c):
        """Row by row; with momentum a row's velocity decays only at the steps that touch it (as
        TF/Keras' sparse momentum; PyTorch refuses momentum with sparse gradients)."""
        g = g.coalesce()
        rows, grad, lr, x = g.indices, g.values.data, c["lr"].data, p.data
        if not self.momentum:
            x[rows] -= lr * grad
            return
        v = state["velocity"].data
        vr = v[rows] * self.momentum - lr * grad
        v[rows] = vr
        x[rows] += self.momentum * vr - lr * grad if self.nesterov else vr

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adagrad(Optimizer):
    """Per-parameter rates that shrink with the squared gradients seen so far:

    cache += dx²;   x −= lr·dx / (√cache + ε)

    >>> import neurona as nr
    >>> w = nr.tensor([1.0, -1.0], requires_grad=True)
    >>> opt = Adagrad([w], learning_rate=0.1)
    >>> (w * w).sum().backward(); opt.step(); [round(v, 4) for v in w.tolist()]
    [0.9, -0.9]
    """

    slots = ("accumulator",)

    def __init__(self, params=None, learning_rate=0.01, initial_accumulator_value=0.0, epsilon=1e-10, **kwargs):
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), float(epsilon)
        super().__init__(params, learning_rate=learning_rate, **kwargs)

    def _initial_slot(self, name, xp, data):
        return xp.full_like(data, self.initial_accumulator_value)

    def update(self, p, g, state, c):
        cache = state["accumulator"]
        cache += g * g
        p -= c["lr"] * g / (ops.sqrt(cache) + self.epsilon)

    def update_sparse(self, p, g, state, c):
        """Row by row: exactly the dense update (as torch.optim.Adagrad's sparse path)."""
        g = g.coalesce()
        rows, grad, x = g.indices, g.values.data, p.data
        xp = B.array_module(x)
        cache = state["accumulator"].data
        cr = cache[rows] + grad * grad
        cache[rows] = cr
        x[rows] -= c["lr"].data * grad / (xp.sqrt(cr) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class RMSprop(Optimizer):
    """Adagrad with a leaky cache, so the rates stop shrinking (Hinton):

    cache = ρ·cache + (1 − ρ)·dx²;   x −= lr·dx / (√cache + ε)

    With momentum μ > 0: buf = μ·buf + dx / (√cache + ε);  x −= lr·buf (PyTorch's form).
    """

    def __init__(self, params=None, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, **kwargs):
        if not 0 <= rho < 1:
            raise ValueError(f"RMSprop: rho must be in [0, 1), got {rho}")
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.slots = ("cache", "momentum") if self.momentum else ("cache",)
        super().__init__(params, learning_rate=learning_rate, **kwargs)

    def update(self, p, g, state, c):
        cache = state["cache"]
        cache *= self.rho
        cache += (1 - self.rho) * g * g
        step = g / (ops.sqrt(cache) + self.epsilon)
        if self.momentum:
            buf = state["momentum"]
            buf *= self.momentum
            buf += step
            step = buf
        p -= c["lr"] * step

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon}


class Adam(Optimizer):
    """Momentum plus RMSprop, with bias correction for the zero-initialised moments (Kingma & Ba):

    m = β₁·m + (1 − β₁)·dx;   v = β₂·v + (1 − β₂)·dx²
    m̂ = m / (1 − β₁ᵗ);   v̂ = v / (1 − β₂ᵗ);   x −= lr·m̂ / (√v̂ + ε)

    t counts this optimiser's steps from 1. amsgrad=True divides by the largest v̂ seen so far
    instead (Reddi et al. 2018; PyTorch's form). weight_decay: decoupled weight decay
    (Loshchilov & Hutter), x −= lr·weight_decay·x before the update, as in Keras 3 and
    `torch.optim.AdamW` (`AdamW` has it on by default).

    >>> import neurona as nr
    >>> w = nr.tensor([1.0, -3.0], requires_grad=True)
    >>> opt = Adam([w], learning_rate=0.1)
    >>> (w * w).sum().backward(); opt.step(); [round(v, 4) for v in w.tolist()]
    [0.9, -2.9]
    """

    slots = ("m", "v")

    def __init__(self, params=None, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, amsgrad=False,
                 weight_decay=None, **kwargs):
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.amsgrad = bool(amsgrad)
        if weight_decay is not None and not float(weight_decay) >= 0:
            raise ValueError(f"{type(self).__name__}: weight_decay must be >= 0, got {weight_decay!r}")
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        if self.amsgrad:
            self.slots = ("m", "v", "v_max")
        super().__init__(params, learning_rate=learning_rate, **kwargs)

    def _constants(self, lr):
        t = self._iterations + 1.0  # a tensor: a traced step reads the step count live
        return {"lr": lr, "bias_1": 1.0 - self.beta_1 ** t, "bias_2": 1.0 - self.beta_2 ** t}

    def update(self, p, g, state, c):
        m, v = state["m"], state["v"]
        if not self.amsgrad and not is_tracing() and fused_update.adam(
                p.data, g.data, m.data, v.data, c["lr"].data, self.beta_1, self.beta_2, c["bias_1"].data,
                c["bias_2"].data, self.epsilon, self.weight_decay):
            return  # one compiled pass, the same bits as the Tensor ops below
        if self.weight_decay:
            p -= c["lr"] * self.weight_decay * p
        m *= self.beta_1
        m += (1 - self.beta_1) * g
        v *= self.beta_2
        v += (1 - self.beta_2) * g * g
        if self.amsgrad:
            v_max = state["v_max"]
            v_max[...] = ops.maximum(v_max, v)
            v = v_max
        m_hat = m / c["bias_1"]
        v_hat = v / c["bias_2"]
        p -= c["lr"] * m_hat / (ops.sqrt(v_hat) + self.epsilon)

    def update_sparse(self, p, g, state, c):
        """Lazy Adam (torch.optim.SparseAdam, TF Addons' LazyAdam): only the rows in `g` move,
        and only their moments are updated; the bias corrections use the optimiser's step count."""
        if self.amsgrad or self.weight_decay:
            raise TypeError(f"{type(self).__name__}: amsgrad and weight_decay are not applied lazily to sparse "
                            f"gradients; use Embedding(sparse=False) or plain Adam")
        g = g.coalesce()
        rows, grad, x = g.indices, g.values.data, p.data
        xp = B.array_module(x)
        m, v = state["m"].data, state["v"].data
        mr = m[rows] * self.beta_1 + (1 - self.beta_1) * grad
        vr = v[rows] * self.beta_2 + (1 - self.beta_2) * grad * grad
        m[rows], v[rows] = mr, vr
        x[rows] -= c["lr"].data * (mr / c["bias_1"].data) / (xp.sqrt(vr / c["bias_2"].data) + self.epsilon)

    def get_config(self):
        config = {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
        if self.amsgrad:
            config["amsgrad"] = True
        if self.weight_decay is not None:
            config["weight_decay"] = self.weight_decay
        return config


class AdamW(Adam):
    """Adam with decoupled weight decay on by default (Keras' `AdamW`, weight_decay=0.004; PyTorch's
    default is 0.01): x −= lr·weight_decay·x, then the Adam step.

    >>> import neurona as nr
    >>> w = nr.tensor([1.0], requires_grad=True)
    >>> opt = AdamW([w], learning_rate=0.1, weight_decay=0.5)
    >>> (w * 0).sum().backward(); opt.step(); round(w.item(), 4)
    0.95
    """

    def __init__(self, params=None, learning_rate=0.001, weight_decay=0.004, **kwargs):
        super().__init__(params, learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
