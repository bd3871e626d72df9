"""Pure, differentiable optimiser updates: `sgd`, `rmsprop`, `adam`.

Each takes the parameters, their gradients and the optimiser's state, and returns new
parameters and a new state, computed with ordinary differentiable ops; nothing is written in
place. Run inside a graph (gradients from `nr.grad(..., create_graph=True)`), an update is one
more differentiable function, so a training step can be differentiated through: MAML's inner
loop, learned learning rates, hyperparameter gradients. Used with `Layer.stateless_call`, which
runs a layer or model with the new parameters.

The formulas are those of the in-place optimisers (`neurona.optim.SGD`, `RMSprop`, `Adam`), and
the numbers match theirs. Parameters and gradients are lists (or tuples, or dicts by name; the
result has the same form); a None gradient leaves its parameter as it is. `lr` (and the other
hyperparameters) may be numbers or 0-d Tensors that require grad (a learned learning rate).
`state=None` starts from the optimiser's initial state.

>>> import neurona as nr
>>> from neurona.optim import functional as fo
>>> w = nr.tensor([1.0, -2.0], requires_grad=True)
>>> (g,) = nr.grad((w ** 2).sum(), [w], create_graph=True)
>>> (w1,), state = fo.sgd([w], [g], lr=0.25)
>>> w1.tolist(), nr.grad((w1 ** 2).sum(), [w])[0].tolist()   # w1 = w / 2: d(w1²)/dw = w / 2
([0.5, -1.0], [0.5, -1.0])

May import: neurona.backend, neurona.ops, neurona.tensor.
"""
from __future__ import annotations

from .. import backend as B
from .. import ops
from ..tensor import Tensor


def _flatten(op, params, grads, state, slots):
    """(keys or None, params list, grads list, per-slot lists) with the lengths checked."""
    keys = None
    if isinstance(params, dict):
        keys = list(params)
        if not isinstance(grads, dict) or set(grads) != set(keys):
            raise ValueError(f"{op}: params is a dict, so grads must be a dict with the same keys; "
                             f"params has {sorted(keys)}, grads has "
                             f"{sorted(grads) if isinstance(grads, dict) else type(grads).__name__}")
        params, grads = [params[k] for k in keys], [grads[k] for k in keys]
    elif isinstance(params, Tensor):
        raise TypeError(f"{op}: pass a list of parameters, not a single Tensor")
    params, grads = list(params), list(grads)
    if len(params) != len(grads):
        raise ValueError(f"{op}: {len(params)} parameters but {len(grads)} gradients")
    for i, (p, g) in enumerate(zip(params, grads)):
        if g is not None and tuple(g.shape) != tuple(p.shape):
            raise ValueError(f"{op}: gradient {i} has shape {tuple(g.shape)}, parameter {i} has shape {p.shape}")
    state = dict(state or {})
    for name in slots:
        values = state.get(name)
        if values is None:
            values = [Tensor(B.array_module(p.data).zeros_like(p.data)) for p in params]
        elif isinstance(values, dict):
            values = [values[k] for k in keys]
        if len(values) != len(params):
            raise ValueError(f"{op}: state[{name!r}] holds {len(values)} entries for {len(params)} parameters")
        state[name] = list(values)
    return keys, params, grads, state


def _pack(keys, values):
    return values if keys is None else dict(zip(keys, values))


def _result(keys, new_params, state, slots):
    for name in slots:
        state[name] = _pack(keys, state[name])
    return _pack(keys, new_params), state


def sgd(params, grads, lr, momentum=0.0, nesterov=False, state=None):
    """SGD: x − lr·dx; with momentum μ the velocity v = μ·v − lr·dx, x + v (Nesterov:
    x + μ·v − lr·dx), as `neurona.optim.SGD`. Returns (new params, new state); the state holds
    'velocity' when momentum is used.

    >>> import neurona as nr
    >>> (w1,), s = sgd([nr.tensor([1.0])], [nr.tensor([2.0])], lr=0.1, momentum=0.9)
    >>> round(w1.item(), 4), [round(v.item(), 4) for v in s["velocity"]]
    (0.8, [-0.2])
    """
    slots = ("velocity",) if momentum else ()
    keys, params, grads, state = _flatten("sgd", params, grads, state, slots)
    new = []
    for i, (p, g) in enumerate(zip(params, grads)):
        if g is None:
            new.append(p)
        elif not momentum:
            new.append(p - lr * g)
        else:
            v = momentum * state["velocity"][i] - lr * g
            state["velocity"][i] = v
            new.append(p + (momentum * v - lr * g if nesterov else v))
    return _result(keys, new, state, slots)


def rmsprop(params, grads, lr=0.001, rho=0.9, epsilon=1e-7, state=None):
    """RMSprop: cache = ρ·cache + (1 − ρ)·dx²; x − lr·dx / (√cache + ε), as
    `neurona.optim.RMSprop` (without momentum). Returns (new params, new state with 'cache').

    >>> import neurona as nr
    >>> (w1,), s = rmsprop([nr.tensor([1.0])], [nr.tensor([2.0])], lr=0.1, rho=0.75, epsilon=0.0)
    >>> round(w1.item(), 4)   # cache = 0.25·4 = 1: x − 0.1·2 / 1
    0.8
    """
    keys, params, grads, state = _flatten("rmsprop", params, grads, state, ("cache",))
    new = []
    for i, (p, g) in enumerate(zip(params, grads)):
        if g is None:
            new.append(p)
            continue
        cache = rho * state["cache"][i] + (1 - rho) * g * g
        state["cache"][i] = cache
        new.append(p - lr * g / (ops.sqrt(cache) + epsilon))
    return _result(keys, new, state, ("cache",))


def adam(params, grads, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, state=None):
    """Adam: m = β₁·m + (1 − β₁)·dx; v = β₂·v + (1 − β₂)·dx²; x − lr·m̂ / (√v̂ + ε) with the
    bias corrections of step t = state['step'] + 1, as `neurona.optim.Adam`. Returns (new params,
    new state with 'step', 'm', 'v').

    >>> import neurona as nr
    >>> (w1,), s = adam([nr.tensor([1.0])], [nr.tensor([2.0])], lr=0.1)
    >>> round(w1.item(), 4), s["step"]   # the first step moves by lr·sign(dx)
    (0.9, 1)
    """
    keys, params, grads, state = _flatten("adam", params, grads, state, ("m", "v"))
    t = state.get("step", 0) + 1
    state["step"] = t
    bias_1, bias_2 = 1.0 - beta_1 ** t, 1.0 - beta_2 ** t
    new = []
    for i, (p, g) in enumerate(zip(params, grads)):
        if g is None:
            new.append(p)
            continue
        m = beta_1 * state["m"][i] + (1 - beta_1) * g
        v = beta_2 * state["v"][i] + (1 - beta_2) * g * g
        state["m"][i], state["v"][i] = m, v
        new.append(p - lr * (m / bias_1) / (ops.sqrt(v / bias_2) + epsilon))
    return _result(keys, new, state, ("m", "v"))


__all__ = ["adam", "rmsprop", "sgd"]
