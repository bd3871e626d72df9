"""`Trainer`: the Keras training loop shared by every model — compile, the public steps
(`train_step`, `test_step`, `predict_step`), the loops around them (`fit`, `evaluate`,
`predict`, `train_on_batch`), summary, save and ONNX export. A model supplies `__call__`/`call`,
`layers`, `trainable_weights`, `losses` and `apply_constraints` (the Layer contract).

The steps are the seam (Keras 3's design): `fit` walks the data through one `DataAdapter` and
calls `train_step(data)` once per batch, `data` being the batch as Tensors on the model's device
— `(x, y)` for ordinary training, or whatever the loader yields for a model whose `train_step` is
its own (a GAN trains on `(x,)`). A step returns a dict of logs (floats or 0-d Tensors); the loop
shows them, hands them to callbacks and History. Override a step to train differently (two
optimisers, a DQN target, a distributed push): the loop, callbacks, progress and history stay.

With `jit=True` (given to `compile`, or to `fit`/`evaluate`/`predict`) the default training
step's tensor work (forward, loss with the regularisation penalties, backward, the optimiser's
update, the constraints) is one `nr.jit` function, traced once per batch shape and replayed; a
last partial batch traces a second signature. Metrics stay outside the trace, computed from the
predictions the traced function returns. An overridden `train_step` is traced whole, so with
`jit=True` it must return Tensors (not update host-side metrics).
May import: numpy (host data), neurona (Tensor, no_grad, backend), neurona.nn (losses, metrics),
neurona.optim, neurona.data, neurona.callbacks, neurona.graph, neurona.models.data_adapter,
neurona.saving (lazily).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..autograd.grad_mode import no_grad
from ..data import Dataset
from ..tensor import Tensor
from .data_adapter import (DataAdapter, array_list, as_list, close, host, is_batch_source, is_iterator,
                           map_structure, unpack_x_y_sample_weight)


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


def _check_finite(model_name, data, epoch, step):
    """Raise if a batch's floating-point arrays hold NaN or inf, naming where."""
    def walk(obj, path):
        if isinstance(obj, (list, tuple)):
            for i, o in enumerate(obj):
                walk(o, f"{path}[{i}]")
        elif isinstance(obj, Tensor) and obj.dtype.kind == "f":
            finite = obj.numpy()
            if not np.isfinite(finite).all():
                bad = np.argwhere(~np.isfinite(finite))[0].tolist()
                raise ValueError(f"{model_name}.fit: batch {step} of epoch {epoch + 1} holds NaN or inf in "
                                 f"{path} (first at index {bad}); clean the data or impute it before fit")
    x, y, _ = unpack_x_y_sample_weight(data)
    walk(x, "x")
    if y is not None:
        walk(y, "y")


def _class_weights(model_name, class_weight, y, sample_weight):
    """Per-sample weights from {class: weight}, times `sample_weight` when given."""
    if not isinstance(class_weight, dict):
        raise ValueError(f"{model_name}.fit: class_weight must be a dict {{class: weight}}, got "
                         f"{type(class_weight).__name__}")
    if y is None or isinstance(y, (list, tuple)) and len(y) != 1:
        raise ValueError(f"{model_name}.fit: class_weight needs array targets y for one output")
    y = host(as_list(y)[0])
    labels = y.argmax(axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(len(y), -1)[:, 0]
    if labels.dtype.kind == "f" and np.any(labels != np.round(labels)):
        raise ValueError(f"{model_name}.fit: class_weight needs class labels (integers or one-hot), got fractions")
    table = {int(k): float(v) for k, v in class_weight.items()}
    weights = np.array([table.get(int(c), 1.0) for c in labels], dtype=np.float32)
    return weights if sample_weight is None else weights * np.asarray(sample_weight, np.float32).reshape(-1)


def _log_value(value):
    """A log entry as a float (a 0-d Tensor or array, a NumPy scalar or a float)."""
    if isinstance(value, Tensor):
        return float(value.item())
    return float(np.asarray(value).reshape(()))


class Trainer:
    """The compile/steps/fit/evaluate/predict mixin of `Model` (see the module docstring)."""

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
        self._step_jit = False  # whether the running loop traces its steps
        from ..nn.metrics import Mean

        self._loss_tracker = Mean(name="loss")

    def _custom(self, step):
        """Whether this model's class overrides `step` ('train_step', 'test_step', 'predict_step')."""
        return getattr(type(self), step) is not getattr(Trainer, step)

    # -- compile ------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, jit=False):
        """Choose the loss (a name or an object; a list gives one per output, `loss_weights` weighs
        them), the optimiser (a name or an object, bound to the weights here) and the metrics to
        report (each computed on every output). `jit=True` makes `fit`, `evaluate` and `predict`
        run their steps as traced `nr.jit` graphs by default (see the module docstring). A model
        whose `train_step` is its own may leave out the loss (its step computes what it needs)."""
        from ..nn import losses as losses_mod, metrics as metrics_mod
        from .. import optim

        n_out = len(self.outputs) if getattr(self, "_graph", False) else 1
        if loss is None:
            if not self._custom("train_step"):
                raise ValueError(f"{self.name}.compile: give a loss, e.g. loss='categorical_crossentropy'")
            self.loss_functions, self.loss_weights = [], []
        else:
            given = loss if isinstance(loss, (list, tuple)) else [loss] * n_out
            if len(given) != n_out:
                raise ValueError(f"{self.name}.compile: {len(given)} losses for {n_out} outputs")
            self.loss_functions = [losses_mod.get(item) for item in given]
            self.loss_weights = [1.0] * n_out if loss_weights is None else [float(w) for w in as_list(loss_weights)]
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
        self._compile_config = self._describe_compile(metrics) if loss is not None else None
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

    def _check_loss(self, what):
        if not self.loss_functions:
            raise RuntimeError(f"{self.name}.{what}: the model was compiled without a loss; the default "
                               f"{what} needs one (compile(loss=...)), or override {what}")

    # -- devices ---------------------------------------------------------------------------------
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
        if isinstance(a, Tensor) and a.device == self._device:
            return a
        if isinstance(a, Tensor):
            a = a.numpy()
        return Tensor(a) if self._device == "cpu" else Tensor(a, device=self._device)

    def _ensure_built(self, xs):
        if not self.built:
            self._build_from_data(xs)
        if self.optimizer is not None:
            self._bind_optimizer()

    def _build_from_data(self, xs):
        with no_grad():
            self([self._tensor(x[:1]) for x in xs] if len(xs) > 1 else self._tensor(xs[0][:1]), training=False)

    # -- loss and metrics --------------------------------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        """The compiled loss of `y_pred` against `y` (each output's loss times its weight, summed)
        plus the layers' regularisation penalties: what the default `train_step` minimises, for
        custom steps to reuse (Keras' `compute_loss`; `x` is accepted for its signature)."""
        self._check_loss("compute_loss")
        loss = self._compiled_loss(as_list(y), as_list(y_pred), sample_weight)
        for penalty in self.losses:  # L1/L2 penalties of the layers' weights
            loss = loss + penalty
        return loss

    def _compiled_loss(self, ys, preds, sample_weight=None):
        total = None
        for f, w, y, p in zip(self.loss_functions, self.loss_weights, ys, preds):
            if sample_weight is None:
                term = f(self._tensor(y), p) * w
            else:
                try:
                    term = f(self._tensor(y), p, sample_weight=sample_weight) * w
                except TypeError as e:
                    if "sample_weight" not in str(e):
                        raise
                    raise ValueError(f"{self.name}: the loss {f!r} takes no sample_weight; use a neurona loss "
                                     f"(by name or object) to weigh samples or classes") from None
            total = term if total is None else total + term
        return total

    def update_metrics(self, y, y_pred):
        """Add one batch to the compiled metrics (each on its output)."""
        ys, preds = as_list(y), as_list(y_pred)
        for i, metric in self.compiled_metrics:
            metric.update(self._tensor(ys[i]), preds[i].detach())

    def metric_results(self):
        """The running loss (of the default steps) and the compiled metrics, as floats."""
        logs = {"loss": self._loss_tracker.result()} if self._loss_tracker.count else {}
        logs.update({m.name: m.result() for _, m in self.compiled_metrics})
        return logs

    def reset_metrics(self):
        """Start the loss tracker and the compiled metrics afresh (each epoch, each evaluate)."""
        self._loss_tracker.reset_state()
        for _, m in self.compiled_metrics:
            m.reset()

    # -- the steps ------------------------------------------------------------------------------------
    def train_step(self, data):
        """One training step on one batch: `data` is `(x, y)` as Tensors on the model's device.
        Forward, `compute_loss`, backward, the optimiser's update and the weights' constraints;
        then the metrics. Returns the logs (`metric_results()`). Override it to train otherwise.

        >>> import numpy as np, neurona as nr
        >>> from neurona.models import Sequential
        >>> from neurona.layers import Dense
        >>> model = Sequential([Dense(1, input_dim=2)])
        >>> model.compile("sgd", "mse")
        >>> logs = model.train_step((nr.ones((4, 2)), nr.zeros((4, 1))))
        >>> sorted(logs)
        ['loss']
        """
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(f"{self.name}.train_step: the default step needs targets (fit(x, y)); a model "
                             f"trained on x alone overrides train_step")
        self._check_loss("train_step")
        xs, ys = as_list(x), as_list(y)
        if self._step_jit:
            self.optimizer.sync_learning_rate()  # a schedule is Python: its value goes in by tensor
            loss, preds = self._jitted("train")(xs, ys, sample_weight)
        else:
            loss, preds = self._train_tensors(xs, ys, sample_weight)
        self._loss_tracker.update_state(float(loss.item()), sample_weight=len(xs[0]))
        self.update_metrics(ys, preds)
        return self.metric_results()

    def test_step(self, data):
        """Loss (with the penalties, as in training) and metrics on one batch `(x, y)` in
        inference mode; returns the logs. Override it to evaluate otherwise."""
        x, y, _ = unpack_x_y_sample_weight(data)
        self._check_loss("test_step")
        xs, ys = as_list(x), as_list(y)
        step = self._jitted("eval") if self._step_jit else self._test_tensors
        loss, preds = step(xs, ys)
        self._loss_tracker.update_state(float(loss.item()), sample_weight=len(xs[0]))
        self.update_metrics(ys, preds)
        return self.metric_results()

    def predict_step(self, data):
        """The model's outputs on one batch (`(x,)` or `(x, y)`, targets ignored) in inference
        mode: a Tensor, or a list of them for several outputs."""
        x, _, _ = unpack_x_y_sample_weight(data)
        step = self._jitted("predict") if self._step_jit else self._predict_tensors
        outs = step(as_list(x))
        return outs if len(outs) > 1 else outs[0]

    # The tensor work of the default steps: what `jit=True` traces.
    def _train_tensors(self, xs, ys, sample_weight=None):
        """Forward, loss (+ penalties), backward, update, constraints."""
        preds = as_list(self(xs if len(xs) > 1 else xs[0], training=True))
        loss = self.compute_loss(xs, ys, preds, sample_weight)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.apply_constraints()
        return loss, preds

    def _test_tensors(self, xs, ys):
        """Predictions and loss (+ penalties) in inference mode."""
        preds = as_list(self(xs if len(xs) > 1 else xs[0], training=False))
        return self.compute_loss(xs, ys, preds), preds

    def _predict_tensors(self, xs):
        return as_list(self(xs if len(xs) > 1 else xs[0], training=False))

    def _jitted(self, kind):
        """The `nr.jit` function of one kind of step, made once: 'train', 'eval' and 'predict' trace
        the default steps' tensor work; 'custom_train' and 'custom_test' trace an overridden step whole."""
        fn = self._jit_steps.get(kind)
        if fn is None:
            from ..graph import jit

            body = {"train": self._train_tensors, "eval": self._test_tensors, "predict": self._predict_tensors,
                    "custom_train": self.train_step, "custom_test": self.test_step}[kind]
            fn = self._jit_steps[kind] = jit(body)
        return fn

    def _run_step(self, kind, data):
        """Call the step `kind` ('train' or 'test') on `data`, traced whole when it is overridden
        and jit is on, and return its logs as floats."""
        name = f"{kind}_step"
        if self._custom(name) and self._step_jit:
            logs = self._jitted(f"custom_{kind}")(data)
        else:
            logs = getattr(self, name)(data)
        if not isinstance(logs, dict):
            raise TypeError(f"{self.name}.{name} must return a dict of logs (e.g. {{'loss': loss}}), "
                            f"got {type(logs).__name__}")
        return {k: _log_value(v) for k, v in logs.items()}

    def _use_jit(self, jit):
        return self.jit if jit is None else bool(jit)

    def _n_io(self):
        """(inputs, outputs) the batches must carry: a functional model's counts; for a Sequential
        or subclassed model, one output and any number of inputs (None: not checked)."""
        if getattr(self, "_graph", False):
            return len(self.inputs), len(self.outputs)
        return None, 1

    def _step_data(self, adapter, batch, index):
        """One batch as a step's data: Tensors on the model's device, `(x, y)` for the default
        steps (x a list for several inputs), the loader's tuple for an overridden step."""
        if adapter.raw:
            data = map_structure(self._tensor, adapter.split(batch, index))
            first = data[0] if data else None
            self._last_inputs = [a.numpy() for a in as_list(first)] if first is not None else None
            return data
        xs, ys = adapter.split(batch, index)
        self._last_inputs = xs  # for monitors that look at activations (DeadUnitMonitor)
        tx = [self._tensor(a) for a in xs]
        x = tx if len(tx) > 1 else tx[0]
        if not ys:
            return (x,)
        ty = [self._tensor(a) for a in ys]
        weights = adapter.weights_of(batch)
        if weights is not None:
            return x, (ty if len(ty) > 1 else ty[0]), self._tensor(weights)
        return x, (ty if len(ty) > 1 else ty[0])

    def train_on_batch(self, x, y=None):
        """One gradient step on one batch (traced when compiled with jit=True); returns the loss,
        or [loss, *metrics] when compiled with metrics (or the step's logs for a custom step)."""
        self._check_compiled("train_on_batch")
        xs, ys = [host(a) for a in as_list(x)], [] if y is None else [host(a) for a in as_list(y)]
        if self._custom("train_step"):
            data = tuple(self._tensor(a) for a in xs + ys)
        else:
            if not ys:
                raise ValueError(f"{self.name}.train_on_batch: give the targets y")
            self._ensure_built(xs)
            self._last_inputs = xs
            tx, ty = [self._tensor(a) for a in xs], [self._tensor(a) for a in ys]
            data = (tx if len(tx) > 1 else tx[0], ty if len(ty) > 1 else ty[0])
        self.reset_metrics()
        self._step_jit = self.jit
        values = list(self._run_step("train", data).values())
        return values[0] if len(values) == 1 else values

    # -- fit -----------------------------------------------------------------------------------
    def _resumed_seed(self, seed, initial_epoch):
        if seed is None and initial_epoch and self._shuffle_seed is not None:
            return self._shuffle_seed  # resuming: continue the same sequence of shuffles
        return seed

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=None, initial_epoch=0, seed=None, jit=None, transform=None,
            num_workers=0, steps_per_epoch=None, validation_steps=None, check_finite=False, sample_weight=None,
            class_weight=None, distribute=None):
        """Train for `epochs` passes over (x, y) in mini-batches, calling `train_step` on each;
        returns a `History`.

        x, y: arrays (a list of arrays for several inputs or outputs), batched here with
        `batch_size` (default 32) and shuffled each epoch unless `shuffle=False`; y may be left out
        for a model whose `train_step` is its own and needs no targets. Or x alone gives the data
        batch by batch (docs/training-with-fit.md, "Training from a DataLoader"): a
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

        sample_weight: one weight per training sample (array data): the loss becomes
        Σ wᵢ·lossᵢ / batch size, as in Keras. class_weight: {class: weight}, each sample weighted by
        its class (integer labels, or the argmax of one-hot targets; classes left out weigh 1),
        multiplied into sample_weight when both are given. Metrics stay unweighted.

        distribute: a `neurona.distributed` strategy (ParameterAveraging, AsyncSGD, Downpour,
        AllReduce, ModelParallel): the epochs run on Ray workers (docs/distributed.md); batch_size is
        then one worker's batch.

        A loss that turns NaN or infinite is reported once with a warning (add the
        `TerminateOnNaN` callback to stop there); `check_finite=True` also checks every training
        batch for NaN/inf before the step and raises naming the batch and the input (one pass over
        the batch on the host: cheap next to a step).
        """
        from ..callbacks import CallbackList, History, ProgbarLogger

        if distribute is not None:  # the strategy runs the epochs on Ray workers (neurona.distributed)
            return distribute.fit(self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                                  callbacks=callbacks, validation_data=validation_data, shuffle=shuffle,
                                  initial_epoch=initial_epoch, seed=seed)
        self._check_compiled("fit")
        custom = self._custom("train_step")
        if steps_per_epoch is not None and int(steps_per_epoch) < 1:
            raise ValueError(f"{self.name}.fit: steps_per_epoch must be >= 1, got {steps_per_epoch}")
        from_arrays = not is_batch_source(x)
        if not from_arrays and validation_split:
            raise ValueError(f"{self.name}.fit: validation_split cannot split a {type(x).__name__}; "
                             f"give validation_data instead")
        if from_arrays and y is None and not custom:
            raise ValueError(f"{self.name}.fit: give the targets y (only a model whose train_step is its own "
                             f"trains on x alone)")
        if (sample_weight is not None or class_weight is not None) and validation_split and validation_data is None:
            raise ValueError(f"{self.name}.fit: with sample_weight or class_weight, give validation_data instead of "
                             f"validation_split")
        n_in, n_out = self._n_io()
        if from_arrays:  # Python lists of numbers become arrays here, as in Keras
            x = array_list(self.name, "fit", "x", x, n_in)
            y = None if y is None else array_list(self.name, "fit", "y", y, n_out)
        if from_arrays and validation_data is None and validation_split:
            xs, ys = x, [] if y is None else y
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"{self.name}.fit: validation_split must lie in (0, 1), got {validation_split}")
            n = len(xs[0])
            cut = n - int(math.ceil(n * validation_split)) if n * validation_split >= 1 else n
            validation_data = ([a[cut:] for a in xs], [a[cut:] for a in ys])
            x, y = [a[:cut] for a in xs], [a[:cut] for a in ys] or None
        if class_weight is not None:
            sample_weight = _class_weights(self.name, class_weight, y, sample_weight)
        if isinstance(x, list) and len(x) == 1:
            x = x[0]
        if isinstance(y, list) and len(y) == 1:
            y = y[0]
        adapter = DataAdapter(self.name, "fit", x, y, batch_size=batch_size, shuffle=shuffle,
                              seed=self._resumed_seed(seed, initial_epoch) if from_arrays or isinstance(x, Dataset)
                              else seed,
                              transform=transform, num_workers=num_workers, steps=steps_per_epoch,
                              n_io=self._n_io(), raw=custom, sample_weight=sample_weight)
        adapter.require_steps("x", "steps_per_epoch")
        validation = None
        if validation_data is not None:
            if is_batch_source(validation_data):
                if validation_steps is None and is_iterator(validation_data):
                    raise ValueError(f"{self.name}.fit: validation_data is a {type(validation_data).__name__}, "
                                     f"an iterator consumed as it goes: give validation_steps so that fit knows "
                                     f"where an epoch ends (an infinite generator never ends by itself)")
                validation = dict(x=validation_data, steps=validation_steps,
                                  batch_size=batch_size if isinstance(validation_data, Dataset) else None)
            else:
                vy = validation_data[1] if len(validation_data) > 1 else None
                validation = dict(x=validation_data[0], y=None if isinstance(vy, list) and not vy else vy,
                                  batch_size=batch_size, steps=validation_steps)
        if adapter.made_loader:  # epoch e gets the e-th shuffle and augmentation, resumed or not
            adapter.source.epoch = initial_epoch
            self._shuffle_seed = adapter.source.seed
        first_pass = None
        if not self.built and not custom and initial_epoch < epochs:  # build from the first batch, before any callback
            first, first_pass = adapter.peek()
            self._ensure_built(adapter.split(first, 0)[0])
        elif self.built and self.optimizer is not None and not custom:
            self._bind_optimizer()
        cbs = list(callbacks or [])
        if verbose:
            cbs.insert(0, ProgbarLogger(verbose=verbose))
        self.history = History()
        cbs.append(self.history)
        params = {
            "epochs": epochs, "steps": adapter.known_steps(),
            "batch_size": getattr(adapter.source, "batch_size", None), "samples": adapter.samples,
            "verbose": verbose, "metrics": ["loss", *self.metric_results()]}
        callback_list = CallbackList(cbs, model=self, params=params)
        self.stop_training = False
        self._step_jit = self._use_jit(jit)
        warned = False
        callback_list.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            callback_list.on_epoch_begin(epoch)
            batches = first_pass if first_pass is not None else adapter.batches()
            first_pass = None
            logs, steps = {}, 0
            try:
                for step, batch in enumerate(batches):
                    callback_list.on_train_batch_begin(step)
                    data = self._step_data(adapter, batch, step)
                    if check_finite:
                        _check_finite(self.name, data, epoch, step)
                    if custom and self.optimizer is not None and not self.optimizer.bound and self.built:
                        self._bind_optimizer()
                    logs = self._run_step("train", data)
                    steps = step + 1
                    if not warned and any(not math.isfinite(v) for k, v in logs.items() if "loss" in k):
                        warned = True
                        warnings.warn(f"{self.name}.fit: the loss became {logs} at epoch {epoch + 1}, batch {step}: "
                                      f"every later result is meaningless. Look for NaN/inf in the inputs "
                                      f"(fit(check_finite=True)), a learning rate that is too high, or log(0); "
                                      f"callbacks=[TerminateOnNaN()] stops training there", stacklevel=2)
                    callback_list.on_train_batch_end(step, logs)
                    if self.stop_training:
                        break
            finally:
                close(batches)  # an epoch that ended early stops its DataLoader's threads
            if steps == 0:
                if not adapter.one_shot or epoch == initial_epoch:
                    raise ValueError(f"{self.name}.fit: x gave no batches in epoch {epoch + 1}")
                warnings.warn(f"{self.name}.fit: x ran out of batches after epoch {epoch}, stopping; it must "
                              f"give steps_per_epoch * epochs = {steps_per_epoch * epochs} batches")
                break
            if params["steps"] is None and not self.stop_training:
                params["steps"] = steps  # an iterable without a length: now it is known
            logs = dict(logs)
            if validation is not None:
                val = self.evaluate(**validation, verbose=0, return_dict=True, jit=self._step_jit)
                self._step_jit = self._use_jit(jit)
                logs.update({"val_" + k: v for k, v in val.items()})
            callback_list.on_epoch_end(epoch, logs)
            if adapter.one_shot and steps < steps_per_epoch and not self.stop_training:
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
        mode, calling `test_step` on each batch. Returns the loss, or [loss, *metrics] when
        compiled with metrics, or a dict.
        x, y: arrays batched with `batch_size` (default 32), or x alone a DataLoader, Dataset or
        iterable of (x, y) batches as in `fit` (an iterator is read until it ends, or for `steps`
        batches). `jit`: run the batches as a traced `nr.jit` step (None: the `compile` setting)."""
        self._check_compiled("evaluate")
        custom = self._custom("test_step")
        adapter = DataAdapter(self.name, "evaluate", x, y, batch_size=batch_size, steps=steps,
                              n_io=self._n_io(), raw=custom)
        if adapter.from_arrays and not custom:
            self._ensure_built(adapter.xs)
        self.reset_metrics()
        self._step_jit = self._use_jit(jit)
        logs, count = {}, 0
        batches = adapter.batches()
        try:
            with no_grad():
                for index, batch in enumerate(batches):
                    if not self.built and not custom:
                        self._ensure_built(adapter.split(batch, index)[0])
                    logs = self._run_step("test", self._step_data(adapter, batch, index))
                    count += 1
        finally:
            close(batches)
        if count == 0:
            raise ValueError(f"{self.name}.evaluate: x gave no batches")
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else list(logs.values())

    def predict(self, x, batch_size=None, verbose=0, jit=None, steps=None):
        """The model's outputs on `x` as NumPy arrays (a list for several outputs), in inference mode,
        calling `predict_step` on each batch.
        x: arrays batched with `batch_size` (default 32), or a DataLoader, Dataset or iterable of
        batches (x, or (x, y) whose targets are ignored), the outputs concatenated in the
        loader's order (an iterator is read until it ends, or for `steps` batches).
        `jit`: run the batches as a traced `nr.jit` step (None: the `compile` setting)."""
        adapter = DataAdapter(self.name, "predict", x, batch_size=batch_size, steps=steps, n_io=self._n_io())
        if adapter.from_arrays:
            self._ensure_built(adapter.xs)
        self._step_jit = self._use_jit(jit)
        chunks = None
        batches = adapter.batches()
        try:
            with no_grad():
                for index, batch in enumerate(batches):
                    if not self.built:
                        self._ensure_built(adapter.split(batch, index)[0])
                    outs = as_list(self.predict_step(self._step_data(adapter, batch, index)))
                    outs = [o.numpy() if isinstance(o, Tensor) else np.asarray(o) for o in outs]
                    chunks = [[o] for o in outs] if chunks is None else [c + [o] for c, o in zip(chunks, outs)]
        finally:
            close(batches)
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

        if str(path).endswith((".h5", ".hdf5", ".keras")):
            raise ValueError(f"{self.name}.save: {str(path)!r} names a Keras file format; neurona saves a folder "
                             f"(config.json + model.safetensors): give a folder name such as 'my_model'")
        save_model(self, path, include_optimizer=include_optimizer)

    def save_weights(self, path):
        """Write only the weights to one `.safetensors` file (Keras' `save_weights`; atomically).
        Weights are keyed by name (`dense/kernel`; nested layers by attribute path)."""
        from ..saving import save_weights

        if not str(path).endswith(".safetensors"):
            raise ValueError(f"{self.name}.save_weights: the file name must end in .safetensors (neurona "
                             f"stores weights as safetensors, never pickle or HDF5), got {str(path)!r}")
        save_weights(self, path)

    def load_weights(self, path):
        """Load weights written by `save_weights` (or a saved model folder's) into this model; the
        names and shapes must match, and a mismatch is an error naming them."""
        from ..saving import load_weights

        load_weights(self, path)

    def export_onnx(self, path, opset=17):
        """Write an ONNX file computing `predict` (dense, convolutional, pooling, normalisation and
        dropout layers; see `neurona.saving.onnx_export`)."""
        from ..saving import export_onnx

        return export_onnx(self, path, opset=opset)
