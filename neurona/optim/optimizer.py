"""`Optimizer`: the base of every optimiser — binding to parameters, learning rate (a number, a
schedule, Keras' `decay`), gradient clipping, `step`, `zero_grad`, checkpoints.

Every update is written with Tensor ops and in-place Tensor ops under `no_grad` on Tensor state
(the slots, the step count and the learning rate are 0-d or parameter-shaped Tensors), so a
whole training step, optimiser included, can be traced by `nr.jit` and replayed: a replay
reads the step count and the learning rate live. A new learning rate (`opt.learning_rate = x`,
a schedule's next value) is written into the learning-rate tensor in place, so it neither
freezes into a trace nor forces a retrace.
May import: neurona.backend, neurona.tensor, neurona.autograd.grad_mode, neurona.autograd.tracing,
neurona.ops, neurona.optim.
"""
from __future__ import annotations

import numbers

from .. import backend as B
from .. import ops
from ..autograd.grad_mode import no_grad
from ..autograd.tracing import is_tracing
from ..tensor import Tensor
from .clip import _clip_grad_norm, clip_grad_value
from .schedules import LearningRateSchedule


def _tracing() -> bool:
    """Whether `nr.jit` is recording in this thread (Python-side bookkeeping must not run then)."""
    return is_tracing()


def _scalar(value, like=None) -> Tensor:
    """A 0-d float64 Tensor holding `value` (a number or a 0-d array of any device), on the
    device of array `like`."""
    device = "cpu" if like is None else B.device_of(like)
    if B.is_array(value):
        value = B.to_device(value, device)
    return Tensor(B.module_for(device).asarray(value, dtype=B.float64))


class Optimizer:
    """Base class. A subclass names its per-parameter state tensors in `slots` and implements
    `update(p, g, state, c)` with Tensor ops, changing the parameter `p` (and its slots) in place
    (`p -= c["lr"] * g`); `c` holds this step's constants as 0-d tensors of `p`'s dtype.

    `params` may be given now or later with `bind(params)`: Keras-style code creates the
    optimiser before the model has weights (`model.compile(optimizer=SGD(lr=0.01))`), and the
    trainer binds it to `model.trainable_weights` when the model is built. A number as the first
    argument is taken as the learning rate (`SGD(0.01)`), as in Keras.

    learning_rate: a number or a schedule (`schedule(iterations) -> lr`); settable.
    decay: Keras' time-based decay, lr_t = lr / (1 + decay·iterations).
    clipnorm: clip each gradient to this L2 norm; global_clipnorm: clip all gradients together
    (`clip_grad_norm`); clipvalue: clip each element to [−clipvalue, clipvalue].

    Traced by `nr.jit`, `step()` reads the learning-rate tensor at every replay, but a schedule
    is a Python function: call `sync_learning_rate()` before each replayed step (the trainer's
    `fit(jit=True)` does) so the tensor holds the schedule's value at the current step.
    """

    slots: tuple = ()

    def __init__(self, params=None, learning_rate=0.01, decay=0.0, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, lr=None):
        if isinstance(params, numbers.Real):
            params, learning_rate = None, params
        if lr is not None:
            learning_rate = lr
        self._iterations = _scalar(0.0)  # the step count, a tensor so that a traced step counts
        self._lr_t = _scalar(0.0)  # the base rate now (a schedule's value is synced into it)
        self.learning_rate = learning_rate
        self.decay = float(decay)
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.params: list[Tensor] = []
        self.state: list[dict] = []
        if params is not None:
            self.bind(params)

    # -- parameters ---------------------------------------------------------------------------
    def bind(self, params):
        """Attach the parameters this optimiser updates (resets the per-parameter state).

        The slots are created here, as zero (or initial-value) tensors, rather than at the first
        step: a traced first step must find them as state, not create them as constants."""
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: pass a list of parameters, not a single Tensor")
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: parameter {i} ({p.name or p.shape}) does not require grad")
        self.params = params
        self.state = []
        for p in params:
            xp = B.array_module(p.data)
            self.state.append({name: Tensor(self._initial_slot(name, xp, p.data)) for name in self.slots})
        if params:  # the scalars live on the parameters' backend
            like = params[0].data
            self._iterations = _scalar(self._iterations.data, like)
            self._lr_t = _scalar(self._lr_t.data, like)
        return self

    def to(self, device):
        """Move the per-parameter state, the step count and the learning rate to `device` in
        place (`model.to(device)` calls it); returns the optimiser."""
        for state in self.state:
            for slot in state.values():
                slot.data = B.to_device(slot.data, device)
        for t in (self._iterations, self._lr_t):
            t.data = B.to_device(t.data, device)
        return self

    @property
    def bound(self) -> bool:
        return bool(self.params)

    def zero_grad(self):
        """Forget the gradients of every parameter (gradients accumulate otherwise)."""
        for p in self.params:
            p.grad = None

    # -- step count and learning rate -------------------------------------------------------------
    @property
    def iterations(self) -> int:
        """Steps taken so far (held in a tensor that a traced step increments)."""
        return int(self._iterations.data)

    @iterations.setter
    def iterations(self, value):
        self._iterations.data[...] = float(value)

    @property
    def learning_rate(self):
        """The learning rate now: the schedule's value at `iterations`, then Keras' `decay`."""
        lr = self.base_learning_rate
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
        self.sync_learning_rate()

    lr = learning_rate  # the course's spelling

    @property
    def base_learning_rate(self) -> float:
        """The rate before Keras' `decay` (the schedule's value now when it is a schedule)."""
        lr = self._lr
        return float(lr(self.iterations) if isinstance(lr, LearningRateSchedule) else lr)

    def sync_learning_rate(self):
        """Write the base rate now (a schedule's value at `iterations`) into the learning-rate
        tensor, in place. `step()` does it itself, except while traced: code that replays a
        traced step with a schedule calls this before each call."""
        self._lr_t.data[...] = self.base_learning_rate

    # -- the update -----------------------------------------------------------------------------
    def step(self):
        """Apply one update to every parameter that has a gradient."""
        if not self.params:
            raise RuntimeError(f"{type(self).__name__}.step: no parameters; pass them or call bind(params)")
        if isinstance(self._lr, LearningRateSchedule) and not _tracing():
            self.sync_learning_rate()
        with no_grad():
            lr = self._lr_t
            if self.decay:
                lr = lr / (self._iterations * self.decay + 1.0)
            if self.global_clipnorm is not None:
                _clip_grad_norm(self.params, self.global_clipnorm)
            if self.clipnorm is not None:
                for p in self.params:
                    if p.grad is not None:
                        _clip_grad_norm([p], self.clipnorm)
            if self.clipvalue is not None:
                clip_grad_value(self.params, self.clipvalue)
            constants: dict = {}
            for p, state in zip(self.params, self.state):
                if p.grad is None:
                    continue
                c = constants.get(p.dtype)
                if c is None:
                    c = constants[p.dtype] = {k: ops.cast(v, p.dtype) for k, v in self._constants(lr).items()}
                self.update(p, p.grad, state, c)
            self._iterations += 1.0

    def _constants(self, lr) -> dict:
        """This step's scalars as float64 0-d tensors (cast to each parameter's dtype once)."""
        return {"lr": lr}

    def _initial_slot(self, name, xp, data):
        return xp.zeros_like(data)

    def update(self, p, g, state: dict, c: dict):  # pragma: no cover - abstract
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
            for name, slot in state.items():
                arr = slot.data
                out[f"{i}.{name}"] = B.numpy.array(arr.get() if hasattr(arr, "get") else arr, copy=True)
        return out

    def load_state_dict(self, state: dict):
        """Restore what `state_dict` returned (the optimiser must be bound to the same parameters).

        Slots missing from `state` start again from their initial value; the slot tensors are
        written in place, so a traced step keeps reading them."""
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
            slots[int(index)][name] = B.array_module(p.data).asarray(arr, dtype=p.dtype)
        for p, own, given in zip(self.params, self.state, slots):
            xp = B.array_module(p.data)
            for name, slot in own.items():
                slot.data[...] = given[name] if name in given else self._initial_slot(name, xp, p.data)
        self.iterations = int(state.get("iterations", 0))
        if "learning_rate" in state:
            self.learning_rate = float(state["learning_rate"])

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"
