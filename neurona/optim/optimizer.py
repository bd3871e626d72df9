"""`Optimizer`: the base of every optimiser — binding to parameters, learning rate (a number, a
schedule, Keras' `decay`), gradient clipping, `step`, `zero_grad`, checkpoints.
May import: neurona.backend, neurona.tensor, neurona.autograd.grad_mode, neurona.optim.
"""
from __future__ import annotations

import numbers

from .. import backend as B
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from .clip import clip_grad_norm, clip_grad_value
from .schedules import LearningRateSchedule


class Optimizer:
    """Base class. A subclass names its per-parameter state arrays in `slots` and implements
    `update(p, g, state, lr)` on raw arrays, changing `p` in place.

    `params` may be given now or later with `bind(params)`: Keras-style code creates the
    optimiser before the model has weights (`model.compile(optimizer=SGD(lr=0.01))`), and the
    trainer binds it to `model.trainable_weights` when the model is built. A number as the first
    argument is taken as the learning rate (`SGD(0.01)`), as in Keras.

    learning_rate: a number or a schedule (`schedule(iterations) -> lr`); settable.
    decay: Keras' time-based decay, lr_t = lr / (1 + decay·iterations).
    clipnorm: clip each gradient to this L2 norm; global_clipnorm: clip all gradients together
    (`clip_grad_norm`); clipvalue: clip each element to [−clipvalue, clipvalue].
    """

    slots: tuple = ()

    def __init__(self, params=None, learning_rate=0.01, decay=0.0, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, lr=None):
        if isinstance(params, numbers.Real):
            params, learning_rate = None, params
        if lr is not None:
            learning_rate = lr
        self.learning_rate = learning_rate
        self.decay = float(decay)
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.iterations = 0
        self.params: list[Tensor] = []
        self.state: list[dict] = []
        if params is not None:
            self.bind(params)

    # -- parameters ---------------------------------------------------------------------------
    def bind(self, params):
        """Attach the parameters this optimiser updates (resets the per-parameter state)."""
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: pass a list of parameters, not a single Tensor")
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: parameter {i} ({p.name or p.shape}) does not require grad")
        self.params = params
        self.state = [{} for _ in params]
        return self

    @property
    def bound(self) -> bool:
        return bool(self.params)

    def zero_grad(self):
        """Forget the gradients of every parameter (gradients accumulate otherwise)."""
        for p in self.params:
            p.grad = None

    # -- learning rate --------------------------------------------------------------------------
    @property
    def learning_rate(self):
        """The learning rate now: the schedule's value at `iterations`, then Keras' `decay`."""
        lr = self._lr(self.iterations) if isinstance(self._lr, LearningRateSchedule) else self._lr
        if self.decay:
            lr = lr / (1.0 + self.decay * self.iterations)
        return float(lr)

    @learning_rate.setter
    def learning_rate(self, value):
        if not isinstance(value, LearningRateSchedule):
            value = float(value)
            if value < 0:
                raise ValueError(f"{type(self).__name__}: learning_rate must be >= 0, got {value}")
        self._lr = value

    lr = learning_rate  # the course's spelling

    @property
    def base_learning_rate(self) -> float:
        """The rate before Keras' `decay` (the schedule's value now when it is a schedule)."""
        lr = self._lr
        return float(lr(self.iterations) if isinstance(lr, LearningRateSchedule) else lr)

    # -- the update -----------------------------------------------------------------------------
    def step(self):
        """Apply one update to every parameter that has a gradient."""
        if not self.params:
            raise RuntimeError(f"{type(self).__name__}.step: no parameters; pass them or call bind(params)")
        lr = self.learning_rate
        with no_grad():
            if self.global_clipnorm is not None:
                clip_grad_norm(self.params, self.global_clipnorm)
            if self.clipnorm is not None:
                for p in self.params:
                    if p.grad is not None:
                        clip_grad_norm([p], self.clipnorm)
            if self.clipvalue is not None:
                clip_grad_value(self.params, self.clipvalue)
            for p, state in zip(self.params, self.state):
                if p.grad is None:
                    continue
                if not state:
                    xp = B.array_module(p.data)
                    for name in self.slots:
                        state[name] = self._initial_slot(name, xp, p.data)
                self.update(p.data, p.grad.data, state, lr)
        self.iterations += 1

    def _initial_slot(self, name, xp, data):
        return xp.zeros_like(data)

    def update(self, p, g, state: dict, lr: float):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.update")

    # -- configs and checkpoints ----------------------------------------------------------------
    def get_config(self) -> dict:
        lr = self._lr
        if isinstance(lr, LearningRateSchedule):
            lr = {"class_name": type(lr).__name__, "config": lr.get_config()}
        config = {"learning_rate": lr, "decay": self.decay}
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            from .schedules import get as get_schedule

            config["learning_rate"] = get_schedule(config["learning_rate"])
        return cls(**config)

    def state_dict(self) -> dict:
        """Flat `{name: array}` of everything `load_state_dict` needs to resume (scalars are 0-d
        arrays), ready for a safetensors file: 'iterations', 'learning_rate' (the base rate when
        it is a number) and '<param index>.<slot>' for each state array."""
        out = {"iterations": B.numpy.asarray(self.iterations, dtype=B.int64)}
        if not isinstance(self._lr, LearningRateSchedule):
            out["learning_rate"] = B.numpy.asarray(self._lr, dtype=B.float64)
        for i, state in enumerate(self.state):
            for name, arr in state.items():
                out[f"{i}.{name}"] = B.numpy.array(arr.get() if hasattr(arr, "get") else arr, copy=True)
        return out

    def load_state_dict(self, state: dict):
        """Restore what `state_dict` returned (the optimiser must be bound to the same parameters)."""
        slots = [{} for _ in self.params]
        for key, arr in state.items():
            if key in ("iterations", "learning_rate"):
                continue
            index, _, name = key.partition(".")
            if not index.isdigit() or int(index) >= len(self.params) or name not in self.slots:
                raise ValueError(f"{type(self).__name__}.load_state_dict: unexpected entry {key!r} for "
                                 f"{len(self.params)} parameters with slots {self.slots}")
            p = self.params[int(index)]
            if tuple(arr.shape) != p.shape:
                raise ValueError(f"{type(self).__name__}.load_state_dict: {key} has shape {tuple(arr.shape)}, "
                                 f"parameter {index} has shape {p.shape}")
            slots[int(index)][name] = B.array_module(p.data).asarray(arr, dtype=p.dtype).copy()
        self.state = slots
        self.iterations = int(state.get("iterations", 0))
        if "learning_rate" in state:
            self.learning_rate = float(state["learning_rate"])

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"
