"""`Optimizer`: the base of every optimiser — binding to parameters, learning rate (a number, a
schedule, Keras' `decay`), the gradient-transform chain (clipping, and where distributed
training puts an all-reduce), `apply_gradients`, `step`, `zero_grad`, checkpoints.

Every update is written with Tensor ops and in-place Tensor ops under `no_grad` on Tensor state
(the slots, the step count and the learning rate are 0-d or parameter-shaped Tensors), so a
whole training step, optimiser included, can be traced by `nr.jit` and replayed: a replay
reads the step count and the learning rate live. A new learning rate (`opt.learning_rate = x`,
a schedule's next value) is written into the learning-rate tensor in place, so it neither
freezes into a trace nor forces a retrace.
May import: neurona.backend, neurona.tensor, neurona.autograd.grad_mode, neurona.autograd.tracing,
neurona.ops, neurona.ops.sparse, neurona.optim.
"""
from __future__ import annotations

import numbers

from .. import backend as B
from .. import ops
from ..autograd.grad_mode import no_grad
from ..autograd.tracing import is_tracing
from ..tensor import Tensor
from ..ops.sparse import RowSparse
from .clip import ClipByGlobalNorm, ClipByNorm, ClipByValue
from .schedules import LearningRateSchedule

# The built-in clipping transforms, in the order they run: (config key, transform class).
_CLIPS = (("global_clipnorm", ClipByGlobalNorm), ("clipnorm", ClipByNorm), ("clipvalue", ClipByValue))
_CLIP_KEYS = [key for key, _ in _CLIPS]


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
    (`p -= c["lr"] * g`); `c` holds this step's constants as 0-d tensors of `p`'s dtype. One that
    can use row-sparse gradients (`Embedding(sparse=True)`) implements `update_sparse` too.

    `params` may be given now or later with `bind(params)`: Keras-style code creates the
    optimiser before the model has weights (`model.compile(optimizer=SGD(lr=0.01))`), and the
    trainer binds it to `model.trainable_weights` when the model is built. A number as the first
    argument is taken as the learning rate (`SGD(0.01)`), as in Keras.

    learning_rate: a number or a schedule (`schedule(iterations) -> lr`); settable.
    decay: Keras' time-based decay, lr_t = lr / (1 + decay·iterations).
    clipnorm: clip each gradient to this L2 norm; global_clipnorm: clip all gradients together
    (`clip_grad_norm`); clipvalue: clip each element to [−clipvalue, clipvalue]. Each is a
    built-in link of `gradient_transforms` (settable later: `opt.clipnorm = 1.0`, `None` removes).

    An update is `apply_gradients([(grad, weight), ...])`; `step()` is the same over the bound
    parameters' `.grad`. Before the update the gradients go through `gradient_transforms`, a
    list of callables `fn(grads, params) -> grads`, in order (see `add_gradient_transform`).

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
        self.gradient_transforms: list = []
        self.global_clipnorm, self.clipnorm, self.clipvalue = global_clipnorm, clipnorm, clipvalue
        self.params: list[Tensor] = []
        self.state: list[dict] = []
        self._index: dict[int, int] = {}  # id(parameter) -> its position in params and state
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
        self._index = {id(p): i for i, p in enumerate(params)}
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

    # -- the gradient transforms ------------------------------------------------------------------
    def add_gradient_transform(self, fn, index=None):
        """Add `fn(grads, params) -> grads` to `gradient_transforms` and return it (so it can
        decorate a function). `grads` and `params` are lists of the same length (a gradient is a
        Tensor of its parameter's shape, or a `RowSparse`); `fn` returns the list of gradients to
        use instead. It runs under `no_grad`, and inside a `nr.jit` trace when the step is traced,
        so it should use Tensor ops and read no Python value from the gradients there.

        By default `fn` goes before the built-in clipping, so that clipping sees what `fn`
        returns: an all-reduce that averages the gradients of several workers, as in PyTorch's
        DistributedDataParallel followed by `clip_grad_norm_`. `index` places it anywhere else
        (`len(opt.gradient_transforms)`: last).

        >>> import neurona as nr
        >>> from neurona.optim import SGD
        >>> w = nr.tensor([1.0], requires_grad=True)
        >>> opt = SGD([w], learning_rate=1.0, clipvalue=0.5)
        >>> halve = opt.add_gradient_transform(lambda grads, params: [g / 2 for g in grads])
        >>> opt.gradient_transforms
        [<function <lambda> ...>, ClipByValue(0.5)]
        >>> opt.apply_gradients([(nr.tensor([3.0]), w)]); w.tolist()   # 3 / 2 = 1.5, clipped to 0.5
        [0.5]
        """
        if not callable(fn):
            raise TypeError(f"{type(self).__name__}.add_gradient_transform: {fn!r} is not callable")
        if index is None:
            index = next((i for i, t in enumerate(self.gradient_transforms) if self._clip_rank(t) is not None),
                         len(self.gradient_transforms))
        self.gradient_transforms.insert(index, fn)
        return fn

    @staticmethod
    def _clip_rank(transform):
        """The position in `_CLIPS` of a built-in clipping transform, None for any other."""
        key = getattr(transform, "_optimizer_option", None)
        return None if key is None else _CLIP_KEYS.index(key)

    def _get_clip(self, key):
        rank = _CLIP_KEYS.index(key)
        for t in self.gradient_transforms:
            if self._clip_rank(t) == rank:
                return t.value if key == "clipvalue" else t.max_norm
        return None

    def _set_clip(self, key, value):
        """Replace, add or (value None) remove the built-in clipping transform of option `key`;
        a new one goes before the built-ins that come after it in `_CLIPS`, or last."""
        chain, rank = self.gradient_transforms, _CLIP_KEYS.index(key)
        at = next((i for i, t in enumerate(chain) if self._clip_rank(t) == rank), None)
        if at is not None:
            del chain[at]
        if value is None:
            return
        if value <= 0:
            raise ValueError(f"{type(self).__name__}: {key} must be > 0, got {value}")
        transform = _CLIPS[rank][1](value)
        transform._optimizer_option = key  # tells it from the same transform added by hand
        if at is None:
            later = (i for i, t in enumerate(chain) if self._clip_rank(t) is not None and self._clip_rank(t) > rank)
            at = next(later, len(chain))
        chain.insert(at, transform)

    global_clipnorm = property(lambda self: self._get_clip("global_clipnorm"),
                               lambda self, v: self._set_clip("global_clipnorm", v))
    clipnorm = property(lambda self: self._get_clip("clipnorm"), lambda self, v: self._set_clip("clipnorm", v))
    clipvalue = property(lambda self: self._get_clip("clipvalue"), lambda self, v: self._set_clip("clipvalue", v))

    # -- the update -----------------------------------------------------------------------------
    def step(self):
        """Apply one update to every bound parameter that has a gradient (`.grad`):
        `apply_gradients` over `zip(grads, params)`."""
        if not self.params:
            raise RuntimeError(f"{type(self).__name__}.step: no parameters; pass them or call bind(params)")
        self.apply_gradients([(p.grad, p) for p in self.params])

    def apply_gradients(self, grads_and_vars):
        """Update each weight with the gradient paired with it (Keras' name): `grads_and_vars` is
        a list of (gradient, weight) pairs; a gradient is a Tensor, a NumPy/CuPy array (moved to
        the weight's device, cast to its dtype), a `RowSparse`, or None (the weight is skipped).
        No `backward` is run and no `.grad` is read: the gradients may come from anywhere (an
        all-reduce, a parameter server, `nr.grad`).

        An unbound optimiser binds itself to the weights of its first call, in that order (as
        Keras builds its optimiser on the first `apply_gradients`); a bound one accepts only the
        weights it was bound to, any subset of them in any order (the others keep their slots
        unchanged). For other weights, `bind(all_weights)` anew (it resets the slots) or use a
        second optimiser. The step count goes up by one per call.

        >>> import neurona as nr
        >>> from neurona.optim import SGD
        >>> w = nr.tensor([1.0, 2.0], requires_grad=True)
        >>> opt = SGD(learning_rate=0.5)
        >>> opt.apply_gradients([(nr.tensor([1.0, -1.0]), w)]); w.tolist(), opt.iterations
        ([0.5, 2.5], 1)
        """
        pairs = list(grads_and_vars)
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TypeError(f"{type(self).__name__}.apply_gradients: item {i} must be a (gradient, weight) "
                                f"pair, not {type(pair).__name__}")
        if not self.params:
            self.bind([p for _, p in pairs])
        grads, params, states = [], [], []
        for i, (g, p) in enumerate(pairs):
            at = self._index.get(id(p))
            if at is None:
                raise ValueError(f"{type(self).__name__}.apply_gradients: weight {i} "
                                 f"({getattr(p, 'name', None) or getattr(p, 'shape', type(p).__name__)}) is not one "
                                 f"of the {len(self.params)} this optimiser is bound to; call bind(weights) with "
                                 "every weight to update (it resets the optimiser's slots) or use another optimiser")
            if g is None:
                continue
            grads.append(self._as_gradient(g, p, i))
            params.append(p)
            states.append(self.state[at])
        self._apply(grads, params, states)

    def _as_gradient(self, g, p, i):
        if B.is_array(g):
            g = Tensor(B.to_device(g, p.device), dtype=p.dtype)
        elif not isinstance(g, (Tensor, RowSparse)):
            raise TypeError(f"{type(self).__name__}.apply_gradients: gradient {i} is a {type(g).__name__}; "
                            "expected a Tensor, a NumPy/CuPy array, a RowSparse or None")
        if g.shape != p.shape:
            raise ValueError(f"{type(self).__name__}.apply_gradients: gradient {i} has shape {g.shape}, "
                             f"its weight ({p.name or 'unnamed'}) has shape {p.shape}")
        return g

    def _apply(self, grads, params, states):
        if isinstance(self._lr, LearningRateSchedule) and not _tracing():
            self.sync_learning_rate()
        with no_grad():
            lr = self._lr_t
            if self.decay:
                lr = lr / (self._iterations * self.decay + 1.0)
            for fn in self.gradient_transforms:
                out = fn(grads, params)
                if out is None or len(out) != len(params):
                    raise ValueError(f"{type(self).__name__}: gradient transform {fn!r} returned "
                                     f"{'None' if out is None else len(out)} gradients for {len(params)} weights")
                grads = list(out)
            constants: dict = {}
            for p, g, state in zip(params, grads, states):
                if g is None:
                    continue
                c = constants.get(p.dtype)
                if c is None:
                    c = constants[p.dtype] = {k: ops.cast(v, p.dtype) for k, v in self._constants(lr).items()}
                if isinstance(g, RowSparse):
                    self.update_sparse(p, g, state, c)
                else:
                    self.update(p, g, state, c)
            self._iterations += 1.0

    def _constants(self, lr) -> dict:
        """This step's scalars as float64 0-d tensors (cast to each parameter's dtype once)."""
        return {"lr": lr}

    def _initial_slot(self, name, xp, data):
        return xp.zeros_like(data)

    def update(self, p, g, state: dict, c: dict):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.update")

    def update_sparse(self, p, g: RowSparse, state: dict, c: dict):
        """The update for a row-sparse gradient `g` (from `Embedding(sparse=True)`); optimisers
        that cannot apply one row by row refuse it."""
        raise TypeError(f"{type(self).__name__} cannot use the row-sparse gradient of {p.name or 'a weight'} "
                        f"{p.shape} (from Embedding(sparse=True) or embedding(..., sparse=True)); use SGD, "
                        "Adagrad or Adam, or a dense embedding (sparse=False)")

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
