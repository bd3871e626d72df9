"""`Trainer`: the Keras training loop shared by every model — compile, fit, evaluate, predict,
train_on_batch, summary, save and ONNX export. A model supplies `__call__`/`call`, `layers`,
`trainable_weights`, `losses` and `apply_constraints` (the Layer contract).

With `jit=True` (given to `compile`, or to `fit`/`evaluate`/`predict`) each step is an `nr.jit`
function: the training step (forward, loss with the regularisation penalties, backward, the
optimiser's update, the constraints) is traced once per batch shape and then replayed as one
graph; a last partial batch simply traces a second signature. Metrics stay outside the trace,
computed from the predictions the step returns.
May import: numpy (host data), neurona (Tensor, no_grad, backend), neurona.nn (losses, metrics),
neurona.optim, neurona.data, neurona.callbacks, neurona.graph, neurona.saving (lazily).
"""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from ..autograd.grad_mode import no_grad
from ..data import DataLoader, Dataset
from ..tensor import Tensor


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _host(a):
    """A NumPy array; float64 data becomes float32, the layers' dtype."""
    a = a.numpy() if isinstance(a, Tensor) else np.asarray(a)
    return a.astype(np.float32) if a.dtype == np.float64 else a


def _is_array(a):
    """An array or Tensor with a batch axis (what a loader's batch fields must be)."""
    return isinstance(a, Tensor) or (hasattr(a, "shape") and hasattr(a, "__len__") and len(a.shape) >= 1)


def _is_batch_source(x):
    """Data given batch by batch: a DataLoader, a Dataset, or any other iterable that is not an
    array, a Tensor, or a list/tuple of them (those are the array API)."""
    if isinstance(x, (DataLoader, Dataset)):
        return True
    if x is None or isinstance(x, (Tensor, list, tuple, dict, str, bytes)) or hasattr(x, "shape"):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__")


def _is_iterator(x):
    """A generator or other iterator: iterating it again continues it instead of starting over."""
    return hasattr(x, "__next__")


def _require_steps(model_name, data, steps, what, steps_name):
    if steps is None and _is_iterator(data):
        raise ValueError(f"{model_name}.fit: {what} is a {type(data).__name__}, an iterator consumed as it "
                         f"goes: give {steps_name} so that fit knows where an epoch ends (an infinite "
                         f"generator never ends by itself)")


def _describe(batch):
    """A batch's structure for error messages, e.g. `tuple of 3 (ndarray (16, 4), ndarray (16,), int)`."""
    if isinstance(batch, (tuple, list)):
        return f"{type(batch).__name__} of {len(batch)} ({', '.join(_describe(b) for b in batch)})"
    shape = getattr(batch, "shape", None)
    return f"{type(batch).__name__} {tuple(shape)}" if shape is not None else type(batch).__name__


def _closing(batches, iterator):
    """`batches`, closing `iterator` when done or closed early (a DataLoader pass stops its threads)."""
    try:
        yield from batches
    finally:
        _close(iterator)


def _close(iterator):
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


class _Metric:
    """A named metric accumulated over batches: stateful objects (update_state/result/reset_state)
    are used as they are; plain functions `fn(y_true, y_pred)` are averaged, weighted by batch size."""

    def __init__(self, name, fn):
        self.name, self.fn = name, fn
        self.reset()

    def reset(self):
        if hasattr(self.fn, "reset_state"):
            self.fn.reset_state()
        self.total, self.count = 0.0, 0

    def update(self, y_true, y_pred):
        if hasattr(self.fn, "update_state"):
            self.fn.update_state(y_true, y_pred)
            return
        value = self.fn(y_true, y_pred)  # a scalar, or one value per sample
        value = np.asarray(value.numpy() if isinstance(value, Tensor) else value, dtype=np.float64)
        n = len(y_true)
        self.total += float(value.mean()) * n
        self.count += n

    def result(self):
        if hasattr(self.fn, "result"):
            r = self.fn.result()
            return float(r.item() if isinstance(r, Tensor) else r)
        return self.total / max(self.count, 1)


class Trainer:
    """The compile/fit/evaluate/predict mixin of `Model` (see the module docstring)."""

    def _init_trainer(self):
        self.optimizer = None
        self.loss_functions, self.loss_weights, self.compiled_metrics = None, None, []
        self.stop_training = False
        self.history = None
        self._compile_config = None
        self._shuffle_seed = None  # the seed of the last fit's shuffling (saved with the training state)
        self._last_inputs = None
        self.jit = False
        self._jit_steps = {}

    # -- compile ------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, jit=False):
        """Choose the loss (a name or an object; a list gives one per output, `loss_weights` weighs
        them), the optimiser (a name or an object, bound to the weights here) and the metrics to
        report (each computed on every output). `jit=True` makes `fit`, `evaluate` and `predict`
        run their steps as traced `nr.jit` graphs by default (see the module docstring)."""
        from ..nn import losses as losses_mod, metrics as metrics_mod
        from .. import optim

        if loss is None:
            raise ValueError(f"{self.name}.compile: give a loss, e.g. loss='categorical_crossentropy'")
        n_out = len(self.outputs) if getattr(self, "_graph", False) else 1
        given = loss if isinstance(loss, (list, tuple)) else [loss] * n_out
        if len(given) != n_out:
            raise ValueError(f"{self.name}.compile: {len(given)} losses for {n_out} outputs")
        self.loss_functions = [losses_mod.get(item) for item in given]
        self.loss_weights = [1.0] * n_out if loss_weights is None else [float(w) for w in _as_list(loss_weights)]
        if len(self.loss_weights) != n_out:
            raise ValueError(f"{self.name}.compile: {len(self.loss_weights)} loss_weights for {n_out} outputs")
        self.optimizer = optim.get(optimizer)
        self.compiled_metrics = []
        for i in range(n_out):
            for m in metrics or []:
                fn = metrics_mod.get(m)
                if i > 0 and hasattr(fn, "get_config"):  # a metric object keeps state: one per output
                    fn = type(fn).from_config(fn.get_config())
                name = m if isinstance(m, str) else (getattr(fn, "name", None)
                                                     or getattr(fn, "__name__", type(fn).__name__))
                if name in ("acc", "accuracy") and isinstance(m, str):
                    name = "accuracy"
                if n_out > 1:
                    name = f"output_{i}_{name}"
                self.compiled_metrics.append((i, _Metric(name, fn)))
        self.jit = bool(jit)
        self._jit_steps = {}  # traced steps refer to the old loss and optimiser
        self._compile_config = self._describe_compile(metrics)
        if self.built:
            self._bind_optimizer()

    def _describe_compile(self, metrics):
        """The compile settings as JSON-ready configs (for `save`), or None when an object (a
        lambda loss, say) cannot be described."""
        from .. import optim
        from ..nn._config import serialize

        try:
            return {"optimizer": optim.serialize(self.optimizer),
                    "loss": [serialize(f) for f in self.loss_functions],
                    "metrics": [m if isinstance(m, str) else serialize(m) for m in metrics or []],
                    "loss_weights": self.loss_weights, "jit": self.jit}
        except (ValueError, AttributeError):
            return None

    def _bind_optimizer(self):
        params = self.trainable_weights
        if not self.optimizer.bound or [id(p) for p in self.optimizer.params] != [id(p) for p in params]:
            self.optimizer.bind(params)
            self._jit_steps = {}  # a traced step would keep updating the old parameter list

    def _check_compiled(self, what):
        if self.loss_functions is None:
            raise RuntimeError(f"{self.name}.{what}: call compile(optimizer, loss, metrics) first")

    # -- one step ------------------------------------------------------------------------------
    def to(self, device):
        """Move the weights, gradients and the optimiser's state to `device` ('cpu' or 'cuda');
        `fit`, `evaluate` and `predict` then send each batch there. Returns the model.

        >>> import numpy as np
        >>> from neurona.models import Sequential
        >>> from neurona.layers import Dense
        >>> model = Sequential([Dense(2, input_dim=3)]).to("cpu")
        >>> model.predict(np.ones((4, 3))).shape
        (4, 2)
        """
        super().to(device)
        if self.optimizer is not None:
            self.optimizer.to(device)
        self._jit_steps = {}  # traced steps hold arrays of the old device
        return self

    def _tensor(self, a):
        """Host data (or a Tensor) as a Tensor on the model's device."""
        return Tensor(a) if self._device == "cpu" else Tensor(a, device=self._device)

    def _ensure_built(self, xs):
        if not self.built:
            self._build_from_data(xs)
        if self.optimizer is not None:
            self._bind_optimizer()

    def _build_from_data(self, xs):
        with no_grad():
            self([self._tensor(x[:1]) for x in xs] if len(xs) > 1 else self._tensor(xs[0][:1]), training=False)

    def _loss(self, ys, preds):
        total = None
        for f, w, y, p in zip(self.loss_functions, self.loss_weights, ys, preds):
            term = f(self._tensor(y), p) * w
            total = term if total is None else total + term
        return total

    def _train_step(self, xs, ys, jit=False):
        self._last_inputs = xs  # for monitors that look at activations (DeadUnitMonitor)
        if jit:
            self.optimizer.sync_learning_rate()  # a schedule is Python: its value goes in by tensor
            loss, preds = self._jitted("train")([self._tensor(x) for x in xs], [self._tensor(y) for y in ys])
        else:
            loss, preds = self._step_graph([self._tensor(x) for x in xs], ys)
        self._update_metrics(ys, preds)
        return float(loss.item())

    def _step_graph(self, inputs, ys):
        """Forward, loss (+ penalties), backward, update, constraints: the traced training step."""
        preds = _as_list(self(inputs if len(inputs) > 1 else inputs[0], training=True))
        loss = self._loss(ys, preds)
        for penalty in self.losses:  # L1/L2 penalties of the layers' weights
            loss = loss + penalty
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.apply_constraints()
        return loss, preds

    def _eval_graph(self, inputs, ys):
        """Predictions and loss (without penalties) in inference mode: the traced eval step."""
        preds = _as_list(self(inputs if len(inputs) > 1 else inputs[0], training=False))
        return self._loss(ys, preds), preds

    def _predict_graph(self, inputs):
        return _as_list(self(inputs if len(inputs) > 1 else inputs[0], training=False))

    def _jitted(self, kind):
        """The `nr.jit` function of one kind of step ('train', 'eval', 'predict'), made once."""
        fn = self._jit_steps.get(kind)
        if fn is None:
            from ..graph import jit

            body = {"train": self._step_graph, "eval": self._eval_graph, "predict": self._predict_graph}[kind]
            fn = self._jit_steps[kind] = jit(body)
        return fn

    def _use_jit(self, jit):
        return self.jit if jit is None else bool(jit)

    def _update_metrics(self, ys, preds):
        for i, metric in self.compiled_metrics:
            metric.update(self._tensor(ys[i]), preds[i].detach())

    def _metric_logs(self, prefix=""):
        return {prefix + m.name: m.result() for _, m in self.compiled_metrics}

    def _reset_metrics(self):
        for _, m in self.compiled_metrics:
            m.reset()

    def train_on_batch(self, x, y):
        """One gradient step on one batch (traced when compiled with jit=True); returns the loss,
        or [loss, *metrics] when compiled with metrics."""
        self._check_compiled("train_on_batch")
        xs, ys = [_host(a) for a in _as_list(x)], [_host(a) for a in _as_list(y)]
        self._ensure_built(xs)
        self._reset_metrics()
        loss = self._train_step(xs, ys, self.jit)
        return loss if not self.compiled_metrics else [loss, *self._metric_logs().values()]

    # -- data given batch by batch: a DataLoader, a Dataset or an iterable of batches --------------
    def _n_io(self):
        """(inputs, outputs) the batches must carry: a functional model's counts; for a Sequential
        or subclassed model, one output and any number of inputs (None: not checked)."""
        if getattr(self, "_graph", False):
            return len(self.inputs), len(self.outputs)
        return None, 1

    def _source(self, what, x, y, given, defaults):
        """`x` as something to iterate for batches. A Dataset is wrapped in a DataLoader with the
        user's settings `given` (None: not given) over `defaults`; a DataLoader or other iterable
        makes its own batches in its own order, so none of `given` (nor `y`) may be set."""
        if y is not None:
            raise ValueError(f"{self.name}.{what}: y must be None when x is a {type(x).__name__}: "
                             f"its batches carry the targets, as (x, y)")
        if isinstance(x, Dataset):
            return DataLoader(x, **{**defaults, **{k: v for k, v in given.items() if v is not None}})
        for name, value in given.items():
            if value is not None:
                raise ValueError(f"{self.name}.{what}: {name}={value!r} cannot apply when x is a "
                                 f"{type(x).__name__}, which makes its own batches (give {name} to "
                                 f"the DataLoader)")
        return x

    def _split_batch(self, what, batch, index):
        """(inputs, targets) of one batch of a loader: `(x, y)` with x and y each an array (or
        Tensor) or a list/tuple of them, or the flat `(*inputs, *targets)` that a DataLoader over
        aligned arrays gives."""
        n_in, n_out = self._n_io()
        xs = ys = None
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            xs, ys = _as_list(batch[0]), _as_list(batch[1])
        elif n_in is not None and isinstance(batch, (tuple, list)) and len(batch) == n_in + n_out:
            xs, ys = list(batch[:n_in]), list(batch[n_in:])
        if (xs is None or (n_in is not None and len(xs) != n_in) or len(ys) != n_out
                or not all(_is_array(a) for a in xs + ys)):
            if n_in is None:
                expected = "(x, y) with y an array and x an array (or a tuple of arrays for several inputs)"
            elif n_in == 1 and n_out == 1:
                expected = "(x, y) with x and y arrays"
            else:
                expected = (f"(inputs, targets) with {n_in} input and {n_out} target arrays, each side an "
                            f"array or a tuple of arrays, or the flat tuple of {n_in + n_out} arrays")
            raise ValueError(f"{self.name}.{what}: batch {index} of x is {_describe(batch)}; expected {expected}")
        lengths = [len(a) for a in xs + ys]
        if any(m != lengths[0] for m in lengths):
            raise ValueError(f"{self.name}.{what}: batch {index} of x has inputs and targets of "
                             f"{lengths} samples; they must agree")
        return xs, ys

    def _batch_inputs(self, what, batch, index):
        """The inputs of one batch for `predict`: x, (x,), (x, y) or ((x1, x2), y), flat tuples
        (x1, x2, ...) for a functional model with several inputs; targets are ignored, as in Keras."""
        n_in, _ = self._n_io()
        xs = None
        if _is_array(batch):
            xs = [batch]
        elif isinstance(batch, (tuple, list)) and batch:
            xs = list(batch[0]) if isinstance(batch[0], (tuple, list)) else list(batch[:n_in or 1])
        if xs is None or (n_in is not None and len(xs) != n_in) or not all(_is_array(a) for a in xs):
            raise ValueError(f"{self.name}.{what}: batch {index} of x is {_describe(batch)}; expected "
                             f"{n_in or 'one or more'} input array(s): x, (x,), (x, y) or ((x1, x2), y)")
        return xs

    @staticmethod
    def _batches(source, steps, first=(), iterator=None):
        """At most `steps` batches (all when None) of `source`, after `first`: a fresh pass of a
        DataLoader or other iterable (closing the result closes the pass, so a DataLoader's threads
        stop), or the continuation of an iterator such as a generator, consumed as it goes."""
        if _is_iterator(source):
            return itertools.islice(itertools.chain(first, source), steps)
        iterator = iter(source) if iterator is None else iterator
        return _closing(itertools.islice(itertools.chain(first, iterator), steps), iterator)

    # -- fit -----------------------------------------------------------------------------------
    def _resumed_seed(self, seed, initial_epoch):
        if seed is None and initial_epoch and self._shuffle_seed is not None:
            return self._shuffle_seed  # resuming: continue the same sequence of shuffles
        return seed

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=None, initial_epoch=0, seed=None, jit=None, transform=None,
            num_workers=0, steps_per_epoch=None, validation_steps=None):
        """Train for `epochs` passes over (x, y) in mini-batches; returns a `History`.

        x, y: arrays (a list of arrays for several inputs or outputs), batched here with
        `batch_size` (default 32) and shuffled each epoch unless `shuffle=False`. Or x alone gives
        the data batch by batch (docs/training-with-fit.md, "Training from a DataLoader"): a
        `neurona.data.DataLoader` or any iterable of `(x, y)` batches, iterated afresh each epoch
        in its own order, which therefore refuses `y`, `batch_size`, `shuffle`, `seed`,
        `transform`, `num_workers` and `validation_split`; or a `neurona.data.Dataset`, wrapped in
        a DataLoader with those settings (all but `validation_split`). A generator or other
        iterator is consumed as it goes, each epoch continuing where the last one stopped, so it
        needs `steps_per_epoch`. steps_per_epoch: at most this many batches per epoch (any x).

        validation_split takes the last fraction of the samples (before shuffling) for validation,
        as Keras does; validation_data=(x_val, y_val) gives them explicitly, or a DataLoader,
        Dataset or iterable of batches as for x (at most `validation_steps` batches per epoch;
        required for an iterator). verbose: 0 silent, 1 a progress bar, 2 one line per epoch.
        `seed` fixes the shuffling (default: the generator seeded by `nr.manual_seed`). `jit`:
        trace the training and validation steps with `nr.jit` (None: the `compile(jit=...)`
        setting); a last partial batch traces a second signature once. initial_epoch: the epoch
        to start from when resuming (Keras' name): epoch e uses the e-th shuffle of `seed`, and
        with seed=None a resumed fit reuses the previous fit's seed (saved with the model), so
        `fit(epochs=2)`, save, `load_model`, `fit(epochs=3, initial_epoch=2)` equals `fit(epochs=3)`
        (for a DataLoader or iterable of your own, its own state decides the order).

        transform: augmentation of the training batches only (never the validation data), called
        as `transform(batch, rng)` on the batch tuple `(*inputs, *targets)` and returning it (the
        `neurona.data.transforms` change the first input and pass the rest through); `rng` is a
        generator private to each batch, drawn from `seed`. num_workers: threads preparing
        (and augmenting) batches while the model trains; the batches are the same for any
        number. Transforms run on the host data before each step, outside any `jit` trace.
        """
        jit = self._use_jit(jit)
        from ..callbacks import CallbackList, History, ProgbarLogger

        self._check_compiled("fit")
        if steps_per_epoch is not None and int(steps_per_epoch) < 1:
            raise ValueError(f"{self.name}.fit: steps_per_epoch must be >= 1, got {steps_per_epoch}")
        if _is_batch_source(x):
            if validation_split:
                raise ValueError(f"{self.name}.fit: validation_split cannot split a {type(x).__name__}; "
                                 f"give validation_data instead")
            if isinstance(x, Dataset):
                seed = self._resumed_seed(seed, initial_epoch)
            source = self._source("fit", x, y, dict(batch_size=batch_size, shuffle=shuffle, seed=seed,
                                                    transform=transform, num_workers=num_workers or None),
                                  dict(batch_size=32, shuffle=True))
            _require_steps(self.name, x, steps_per_epoch, "x", "steps_per_epoch")

            def split(batch, index):
                return self._split_batch("fit", batch, index)
            samples = len(source.dataset) if isinstance(source, DataLoader) else None
        else:
            batch_size = 32 if batch_size is None else batch_size
            xs, ys = [_host(a) for a in _as_list(x)], [_host(a) for a in _as_list(y)]
            n = len(xs[0])
            if any(len(a) != n for a in xs + ys):
                raise ValueError(f"{self.name}.fit: x and y must have the same number of samples; got "
                                 f"{[len(a) for a in xs]} and {[len(a) for a in ys]}")
            if validation_data is None and validation_split:
                if not 0.0 < validation_split < 1.0:
                    raise ValueError(f"{self.name}.fit: validation_split must lie in (0, 1), got {validation_split}")
                cut = n - int(math.ceil(n * validation_split)) if n * validation_split >= 1 else n
                validation_data = ([a[cut:] for a in xs], [a[cut:] for a in ys])
                xs, ys = [a[:cut] for a in xs], [a[:cut] for a in ys]
            self._ensure_built(xs)
            source = DataLoader(tuple(xs + ys), batch_size=batch_size,
                                shuffle=True if shuffle is None else shuffle,
                                seed=self._resumed_seed(seed, initial_epoch), transform=transform,
                                num_workers=num_workers)
            n_in = len(xs)

            def split(batch, index):
                return list(batch[:n_in]), list(batch[n_in:])
            samples = len(xs[0])
        if validation_data is not None:
            if _is_batch_source(validation_data):
                _require_steps(self.name, validation_data, validation_steps, "validation_data", "validation_steps")
                validation = (validation_data,), (batch_size if isinstance(validation_data, Dataset) else None)
            else:
                vx, vy = validation_data[0], validation_data[1]
                validation = ([_host(a) for a in _as_list(vx)], [_host(a) for a in _as_list(vy)]), batch_size
        if source is not x:  # a loader made here: epoch e gets the e-th shuffle and augmentation, resumed or not
            source.epoch = initial_epoch
            self._shuffle_seed = source.seed
        one_shot = _is_iterator(source)
        first_pass = None
        if not self.built and initial_epoch < epochs:  # build from the first batch, before any callback
            it = source if one_shot else iter(source)
            first = next(it, None)
            if first is None:
                _close(it)
                raise ValueError(f"{self.name}.fit: x gave no batches")
            self._ensure_built([_host(a) for a in split(first, 0)[0]])
            first_pass = self._batches(source, steps_per_epoch, first=[first], iterator=it)
        elif self.built:
            self._bind_optimizer()
        known = [s for s in (steps_per_epoch, len(source) if hasattr(source, "__len__") else None)
                 if s is not None]
        cbs = list(callbacks or [])
        if verbose:
            cbs.insert(0, ProgbarLogger(verbose=verbose))
        self.history = History()
        cbs.append(self.history)
        params = {
            "epochs": epochs, "steps": min(known) if known else None,
            "batch_size": getattr(source, "batch_size", None), "samples": samples,
            "verbose": verbose, "metrics": ["loss", *self._metric_logs()]}
        callback_list = CallbackList(cbs, model=self, params=params)
        self.stop_training = False
        callback_list.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            callback_list.on_epoch_begin(epoch)
            batches = first_pass if first_pass is not None else self._batches(source, steps_per_epoch)
            first_pass = None
            total, seen, steps = 0.0, 0, 0
            try:
                for step, batch in enumerate(batches):
                    callback_list.on_train_batch_begin(step)
                    bx, by = split(batch, step)
                    bx, by = [_host(a) for a in bx], [_host(a) for a in by]
                    loss = self._train_step(bx, by, jit)
                    total, seen, steps = total + loss * len(bx[0]), seen + len(bx[0]), step + 1
                    callback_list.on_train_batch_end(step, {"loss": total / seen, **self._metric_logs()})
                    if self.stop_training:
                        break
            finally:
                _close(batches)  # an epoch that ended early stops its DataLoader's threads
            if steps == 0:
                if not one_shot or epoch == initial_epoch:
                    raise ValueError(f"{self.name}.fit: x gave no batches in epoch {epoch + 1}")
                warnings.warn(f"{self.name}.fit: x ran out of batches after epoch {epoch}, stopping; it must "
                              f"give steps_per_epoch * epochs = {steps_per_epoch * epochs} batches")
                break
            if params["steps"] is None and not self.stop_training:
                params["steps"] = steps  # an iterable without a length: now it is known
            logs = {"loss": total / max(seen, 1), **self._metric_logs()}
            if validation_data is not None:
                val_args, val_batch = validation
                val = self.evaluate(*val_args, batch_size=val_batch, verbose=0, return_dict=True, jit=jit,
                                    steps=validation_steps)
                logs.update({"val_" + k: v for k, v in val.items()})
            callback_list.on_epoch_end(epoch, logs)
            if one_shot and steps < steps_per_epoch and not self.stop_training:
                warnings.warn(f"{self.name}.fit: x ran out of batches in epoch {epoch + 1} ({steps} of "
                              f"steps_per_epoch={steps_per_epoch}), stopping")
                break
            if self.stop_training:
                break
        callback_list.on_train_end()
        return self.history

    # -- evaluate / predict ------------------------------------------------------------------------
    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, return_dict=False, jit=None, steps=None):
        """Loss (plus regularisation penalties, as in training) and metrics on (x, y), in inference
        mode. Returns the loss, or [loss, *metrics] when compiled with metrics, or a dict.
        x, y: arrays batched with `batch_size` (default 32), or x alone a DataLoader, Dataset or
        iterable of (x, y) batches as in `fit` (an iterator is read until it ends, or for `steps`
        batches). `jit`: run the batches as a traced `nr.jit` step (None: the `compile` setting)."""
        self._check_compiled("evaluate")
        step = self._jitted("eval") if self._use_jit(jit) else self._eval_graph
        if _is_batch_source(x):
            source = self._source("evaluate", x, y, dict(batch_size=batch_size),
                                  dict(batch_size=32, prefetch=0, seed=0))

            def split(batch, index):
                return self._split_batch("evaluate", batch, index)
        else:
            xs, ys = [_host(a) for a in _as_list(x)], [_host(a) for a in _as_list(y)]
            self._ensure_built(xs)
            source = DataLoader(tuple(xs + ys), batch_size=32 if batch_size is None else batch_size,
                                prefetch=0, seed=0)

            def split(batch, index):
                return list(batch[:len(xs)]), list(batch[len(xs):])
        self._reset_metrics()
        total, seen, count = 0.0, 0, 0
        batches = self._batches(source, steps)
        try:
            with no_grad():
                for index, batch in enumerate(batches):
                    bx, by = split(batch, index)
                    bx, by = [_host(a) for a in bx], [_host(a) for a in by]
                    if not self.built:
                        self._ensure_built(bx)
                    loss, preds = step([self._tensor(x) for x in bx], [self._tensor(y) for y in by])
                    total += float(loss.item()) * len(bx[0])
                    seen, count = seen + len(bx[0]), count + 1
                    self._update_metrics(by, preds)
                penalty = sum(float(p.item()) for p in self.losses)
        finally:
            _close(batches)
        if count == 0 and _is_batch_source(x):
            raise ValueError(f"{self.name}.evaluate: x gave no batches")
        logs = {"loss": total / max(seen, 1) + penalty, **self._metric_logs()}
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else list(logs.values())

    def predict(self, x, batch_size=None, verbose=0, jit=None, steps=None):
        """The model's outputs on `x` as NumPy arrays (a list for several outputs), in inference mode.
        x: arrays batched with `batch_size` (default 32), or a DataLoader, Dataset or iterable of
        batches (x, or (x, y) whose targets are ignored), the outputs concatenated in the
        loader's order (an iterator is read until it ends, or for `steps` batches).
        `jit`: run the batches as a traced `nr.jit` step (None: the `compile` setting)."""
        if _is_batch_source(x):
            source = self._source("predict", x, None, dict(batch_size=batch_size),
                                  dict(batch_size=32, prefetch=0, seed=0))

            def inputs(batch, index):
                return self._batch_inputs("predict", batch, index)
        else:
            xs = [_host(a) for a in _as_list(x)]
            self._ensure_built(xs)
            source = DataLoader(tuple(xs), batch_size=32 if batch_size is None else batch_size,
                                prefetch=0, seed=0)

            def inputs(batch, index):
                return list(batch)
        step = self._jitted("predict") if self._use_jit(jit) else self._predict_graph
        chunks = None
        batches = self._batches(source, steps)
        try:
            with no_grad():
                for index, batch in enumerate(batches):
                    bx = [_host(a) for a in inputs(batch, index)]
                    if not self.built:
                        self._ensure_built(bx)
                    outs = [o.numpy() for o in step([self._tensor(x) for x in bx])]
                    chunks = [[o] for o in outs] if chunks is None else [c + [o] for c, o in zip(chunks, outs)]
        finally:
            _close(batches)
        if chunks is None:
            raise ValueError(f"{self.name}.predict: x gave no batches")
        result = [np.concatenate(c) for c in chunks]
        return result if len(result) > 1 else result[0]

    # -- description ------------------------------------------------------------------------------
    def count_params(self) -> int:
        """Number of weights (trainable or not), each shared weight counted once."""
        seen = {}
        for t in self.weights:
            seen[id(t)] = t.size
        return sum(seen.values())

    def summary(self, print_fn=print):
        """Print (and return) the layer table: name (type), output shape, parameter count."""
        rows = self._summary_rows()
        header = ("Layer (type)", "Output Shape", "Param #")
        widths = [max(len(header[i]), *(len(r[i]) for r in rows)) + 2 for i in range(3)] if rows else [20, 20, 10]
        line = "=" * sum(widths)
        text = [f'Model: "{self.name}"', "_" * sum(widths),
                "".join(h.ljust(w) for h, w in zip(header, widths)), line]
        for i, r in enumerate(rows):
            text.append("".join(c.ljust(w) for c, w in zip(r, widths)))
            text.append(line if i == len(rows) - 1 else "_" * sum(widths))
        trainable = sum({id(t): t.size for t in self.trainable_weights}.values())
        total = self.count_params()
        text += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                 f"Non-trainable params: {total - trainable:,}", "_" * sum(widths)]
        out = "\n".join(text)
        if print_fn is not None:
            print_fn(out)
        return out

    def _summary_rows(self):
        rows = []
        for layer, shape in self._layer_shapes():
            rows.append((f"{layer.name} ({type(layer).__name__})", str(shape), f"{layer.count_params():,}"))
        return rows

    # -- saving --------------------------------------------------------------------------------------
    def save(self, path, include_optimizer=True):
        """Save to folder `path`: config.json (architecture, compile settings) + model.safetensors,
        plus optimizer.safetensors (the optimiser's state, to resume training) once the model has
        trained, unless `include_optimizer=False`."""
        from ..saving import save_model

        save_model(self, path, include_optimizer=include_optimizer)

    def export_onnx(self, path, opset=17):
        """Write an ONNX file computing `predict` (dense, convolutional, pooling, normalisation and
        dropout layers; see `neurona.saving.onnx_export`)."""
        from ..saving import export_onnx

        return export_onnx(self, path, opset=opset)
