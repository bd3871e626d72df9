"""A model as something that can travel to another process: its description (the JSON config and
compile settings that `neurona.saving` writes into config.json) and its weights as named NumPy
arrays. A worker rebuilds its replica from these, never from a pickled model.
May import: numpy, json, neurona (Tensor, no_grad), neurona.nn (the layer registry), neurona.layers,
neurona.models, neurona.optim,
neurona.nn.losses, neurona.nn.metrics.
"""
from __future__ import annotations

import json

import numpy as np

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor


def describe(model) -> str:
    """The JSON text a worker rebuilds `model` from: class, config and compile settings.

    >>> from neurona.models import Sequential
    >>> from neurona.layers import Dense
    >>> model = Sequential([Dense(2, input_dim=3)]); model.compile("sgd", "mse")
    >>> rebuild(describe(model)).count_params()
    8
    """
    if not model.built:
        raise ValueError(f"neurona.distributed: {model.name} is not built; give the first layer input_dim= or "
                         f"input_shape= (or call it on a batch) before distributing it")
    compile_config = getattr(model, "_compile_config", None)
    if getattr(model, "loss_functions", None) is None:
        raise ValueError(f"neurona.distributed: compile {model.name} (optimizer, loss) before distributing it")
    if compile_config is None:
        raise ValueError(f"neurona.distributed: {model.name} cannot be rebuilt on a worker: its compile settings "
                         f"hold objects without a config (a lambda loss or metric?); use named or registered ones")
    spec = {"class_name": type(model).__name__, "config": model.get_config(), "compile": compile_config}
    try:
        return json.dumps(spec)
    except (TypeError, ValueError) as e:
        raise ValueError(f"neurona.distributed: {model.name} cannot be rebuilt on a worker: its config is not "
                         f"JSON ({e})") from None


def rebuild(spec: str):
    """A compiled model from `describe`'s text (raises ValueError naming the class when its
    config does not rebuild it: an unregistered layer, a custom class the worker cannot import)."""
    from .. import layers, models, optim  # noqa: F401 - importing them registers their classes
    from ..nn import losses, metrics
    from ..nn.layer import get_registered

    spec = json.loads(spec)
    name = spec["class_name"]
    try:
        model = get_registered(name).from_config(spec["config"])
    except Exception as e:  # any failure here means the same thing to the user: not rebuildable
        raise ValueError(f"neurona.distributed: the model {name!r} cannot be rebuilt from its config on a worker "
                         f"({type(e).__name__}: {e}); register custom layers and models with "
                         f"@neurona.nn.layer.register in a module the workers import") from e
    if not model.built:
        raise ValueError(f"neurona.distributed: the model {name!r} rebuilt from its config has no input shape; "
                         f"give its first layer input_dim= or input_shape=")
    c = spec["compile"]
    model.compile(optimizer=optim.get(c["optimizer"]), loss=[losses.get(x) for x in c["loss"]],
                  metrics=[metrics.get(m) if isinstance(m, dict) else m for m in c["metrics"]],
                  loss_weights=c.get("loss_weights"))
    model._bind_optimizer()
    return model


def named_weights(model, trainable=True) -> dict:
    """{unique weight name: Tensor}, in the model's order (trainable ones, or the others)."""
    out = {}
    for t in model.trainable_weights if trainable else model.non_trainable_weights:
        if t.name in out and out[t.name] is not t:
            raise ValueError(f"neurona.distributed: two weights of {model.name} are named {t.name!r}; give the "
                             f"layers unique names")
        out[t.name] = t
    return out


def get_arrays(model, trainable=True) -> dict:
    """{name: NumPy copy} of the weights."""
    return {name: np.array(t.numpy(), copy=True) for name, t in named_weights(model, trainable).items()}


def set_arrays(model, arrays: dict, trainable=True):
    """Write `arrays` (a subset of the weights, by name) into the model in place."""
    weights = named_weights(model, trainable)
    with no_grad():
        for name, a in arrays.items():
            t = weights[name]
            if tuple(a.shape) != t.shape:
                raise ValueError(f"neurona.distributed: weight {name} arrives with shape {tuple(a.shape)}, "
                                 f"{model.name} has {t.shape}")
            t.data[...] = a


class GradientCapture:
    """A gradient transform (`Optimizer.add_gradient_transform`) that takes a step's gradients
    away from the local optimiser: while `active`, it keeps them as {weight name: NumPy array}
    in `grads` and hands the optimiser `None` for every weight, so the replica's weights do not
    move. A worker computes its gradients by running the model's own public `train_step` (the
    forward pass, `compute_loss`, backward, the metrics, and a `train_step` the user overrode)
    and pushes what this transform caught to the parameter servers (or into the ring). It sits
    before the clipping links of the chain, so the gradients leave unclipped: the optimiser
    that applies them (a parameter-server shard's, or the worker's after the all-reduce)
    clips the sum, as one process would. Inactive, it passes the gradients through.

    >>> import neurona as nr
    >>> from neurona.optim import SGD
    >>> w = nr.tensor([1.0, 2.0], requires_grad=True); w.name = "w"
    >>> opt = SGD(learning_rate=0.5); cap = opt.add_gradient_transform(GradientCapture())
    >>> cap.active = True; opt.apply_gradients([(nr.tensor([1.0, -1.0]), w)])
    >>> w.tolist(), cap.grads["w"].tolist()
    ([1.0, 2.0], [1.0, -1.0])
    """

    def __init__(self):
        self.active, self.grads = False, {}

    def __call__(self, grads, params):
        if not self.active:
            return grads
        self.grads = {p.name: np.array((g.to_dense() if getattr(g, "is_sparse", False) else g).numpy(), copy=True)
                      for g, p in zip(grads, params)}
        return [None] * len(grads)

    def __repr__(self):
        return "GradientCapture()"


def capture(model) -> GradientCapture:
    """The `GradientCapture` link of `model.optimizer`'s chain (added on the first call)."""
    opt = model.optimizer
    for fn in opt.gradient_transforms:
        if isinstance(fn, GradientCapture):
            return fn
    return opt.add_gradient_transform(GradientCapture())


def loss_and_gradients(model, xs, ys):
    """One batch through the model's public `train_step` with the local update taken away
    (`GradientCapture`): (loss, {name: gradient array}, logs) where logs holds the compiled
    metrics on this batch. The loss is what `train_step` tracks: `model.compute_loss` (the
    compiled loss plus the layers' penalties). A weight without a gradient gets zeros."""
    cap = capture(model)
    model.reset_metrics()
    x = [Tensor(a) for a in xs]
    y = [Tensor(a) for a in ys]
    cap.active, cap.grads = True, {}
    try:
        logs = model.train_step((x if len(x) > 1 else x[0], y if len(y) > 1 else y[0]))
    finally:
        cap.active = False
    grads = {name: cap.grads[name] if name in cap.grads else np.zeros(t.shape, t.dtype)
             for name, t in named_weights(model).items()}
    logs = dict(logs)
    loss = logs.pop("loss")
    return float(loss), grads, logs
