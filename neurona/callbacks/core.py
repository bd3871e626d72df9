"""The standard callbacks: EarlyStopping, ModelCheckpoint, LearningRateScheduler,
ReduceLROnPlateau, CSVLogger, TensorBoard.
May import: numpy, the standard library, neurona.optim, neurona.saving (lazily), tensorboardX (lazily).
"""
from __future__ import annotations

import csv
import inspect
import math
import os
import warnings

from .base import Callback


def _better(mode, monitor):
    """`improved(value, best, min_delta)` for mode 'min', 'max' or 'auto' (max for accuracies)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', not {mode!r}")
    if mode == "auto":
        mode = "max" if any(k in monitor for k in ("acc", "auc", "precision", "recall")) else "min"
    if mode == "min":
        return mode, lambda v, best, d: v < best - d
    return mode, lambda v, best, d: v > best + d


def _monitored(logs, monitor, who):
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(f"{who}: '{monitor}' is not logged (have {sorted(logs or {})}); skipping", stacklevel=3)
    return value


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs; with
    `restore_best_weights`, put back the weights of the best epoch when training ends."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto", baseline=None,
                 restore_best_weights=False, verbose=0):
        super().__init__()
        self.monitor, self.min_delta, self.patience = monitor, abs(float(min_delta)), int(patience)
        self.mode, self._improved = _better(mode, monitor)
        self.baseline, self.restore_best_weights, self.verbose = baseline, restore_best_weights, verbose

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, None, None
        self.best = self.baseline if self.baseline is not None else (math.inf if self.mode == "min" else -math.inf)
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if value is None:
            return
        if self._improved(value, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= max(self.patience, 1):
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch is not None and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (a folder, see `model.save`) or only its weights (one .safetensors file)
    after every epoch, or only when `monitor` improves (`save_best_only`). `filepath` may hold
    format fields: `ckpt-{epoch:02d}-{val_loss:.3f}`. A model folder holds the optimiser's state
    too (`save_optimizer=True`), so `load_model(path)` then `fit(..., initial_epoch=epoch)` resumes
    training exactly where the checkpoint was taken. Every file is written in full to a temporary
    name before any is renamed into place, so a crash while writing leaves the previous checkpoint
    intact."""

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, save_weights_only=False, mode="auto",
                 verbose=0, save_optimizer=True):
        super().__init__()
        self.filepath, self.monitor = os.fspath(filepath), monitor
        self.save_best_only, self.save_weights_only, self.verbose = save_best_only, save_weights_only, verbose
        self.save_optimizer = bool(save_optimizer)
        self.mode, self._improved = _better(mode, monitor)

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        from ..saving import save_model, save_weights

        logs = logs or {}
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if value is None or not self._improved(value, self.best, 0.0):
                return
            self.best = value
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_weights_only:
            save_weights(self.model, path)
        else:
            save_model(self.model, path, include_optimizer=self.save_optimizer)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved model to {path}")


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to `schedule(epoch, lr)` (or `schedule(epoch)`);
    epochs count from 0, as in Keras."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose
        try:
            self._two_args = len(inspect.signature(schedule).parameters) >= 2
        except (TypeError, ValueError):
            self._two_args = True

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        lr = self.schedule(epoch, opt.base_learning_rate) if self._two_args else self.schedule(epoch)
        opt.learning_rate = float(lr)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(lr):.6g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = self.model.optimizer.learning_rate


class ReduceLROnPlateau(Callback):
    """Divide the learning rate by 1/`factor` when `monitor` stops improving for `patience` epochs
    (AlexNet's "divide by 10 when the validation error stops improving"); the rule itself is
    `neurona.optim.ReduceLROnPlateau`."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, mode="auto", min_delta=1e-4, cooldown=0,
                 min_lr=0.0, verbose=0):
        super().__init__()
        self.monitor, self.verbose = monitor, verbose
        self.mode, _ = _better(mode, monitor)
        self._settings = dict(factor=factor, patience=patience, min_delta=min_delta, cooldown=cooldown, min_lr=min_lr)

    def on_train_begin(self, logs=None):
        from ..optim import ReduceLROnPlateau as Rule

        self.rule = Rule(self.model.optimizer, mode=self.mode, **self._settings)

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if value is None:
            return
        before = self.model.optimizer.base_learning_rate
        after = self.rule.step(value)
        if logs is not None:
            logs["lr"] = after
        if self.verbose and self.model.optimizer.base_learning_rate < before:
            print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {after:.6g}.")


class CSVLogger(Callback):
    """Append one row per epoch (epoch, then every logged value) to a CSV file, flushed each row."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, append

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer, self._keys, self._has_header = None, None, exists

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._writer is None:
            self._keys = sorted(logs)
            self._writer = csv.DictWriter(self._file, ["epoch", *self._keys], delimiter=self.separator,
                                          extrasaction="ignore", restval="")
            if not self._has_header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **logs})
        self._file.flush()

    def on_train_end(self, logs=None):
        self._file.close()


class TensorBoard(Callback):
    """TensorBoard event files, laid out as Keras writes them: `log_dir/train/` holds the training
    values and `log_dir/validation/` the validation ones, as two runs under the same tags
    (`epoch_loss`, `epoch_accuracy`, ...), so TensorBoard overlays a metric's training and
    validation curves in one chart. The train run also gets the learning rate
    (`epoch_learning_rate`), with `update_freq=N` the logs of every N-th batch (`batch_loss`), and
    every `histogram_freq` epochs a histogram of each weight and of its last gradient. Needs
    `tensorboardX` (`pip install -e ".[tb]"` in a neurona checkout, which also installs
    `tensorboard` to look at the runs: `tensorboard --logdir log_dir`)."""

    def __init__(self, log_dir="logs", histogram_freq=0, write_grads=True, update_freq="epoch"):
        super().__init__()
        self.log_dir, self.histogram_freq, self.write_grads = os.fspath(log_dir), int(histogram_freq), write_grads
        if not (update_freq in ("epoch", "batch") or (isinstance(update_freq, int) and update_freq > 0)):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive int, got {update_freq!r}")
        self.update_freq = 1 if update_freq == "batch" else update_freq

    def on_train_begin(self, logs=None):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError("TensorBoard callback needs tensorboardX: pip install tensorboardX tensorboard "
                              "(or, in a neurona checkout, pip install -e '.[tb]')") from None
        self._writer_class = SummaryWriter
        self.writer = SummaryWriter(os.path.join(self.log_dir, "train"))
        self.val_writer = None  # made at the first validation values: no empty run without them
        self._step = 0

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if isinstance(self.update_freq, int) and self._step % self.update_freq == 0:
            for k, v in (logs or {}).items():
                self.writer.add_scalar(f"batch_{k}", v, self._step)

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            if k.startswith("val_"):
                if self.val_writer is None:
                    self.val_writer = self._writer_class(os.path.join(self.log_dir, "validation"))
                self.val_writer.add_scalar(f"epoch_{k[4:]}", v, epoch)
            else:
                self.writer.add_scalar(f"epoch_{k}", v, epoch)
        self.writer.add_scalar("epoch_learning_rate", self.model.optimizer.learning_rate, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            for t in self.model.weights:
                self.writer.add_histogram(t.name, t.numpy(), epoch)
                if self.write_grads and t.grad is not None:
                    self.writer.add_histogram(f"{t.name}/gradient", t.grad.numpy(), epoch)
        for writer in (self.writer, self.val_writer):
            if writer is not None:
                writer.flush()

    def on_train_end(self, logs=None):
        for writer in (self.writer, self.val_writer):
            if writer is not None:
                writer.close()


class TerminateOnNaN(Callback):
    """Stop training at the first batch whose loss is NaN or infinite (Keras' callback): after
    that, weights and every later result are meaningless.

    >>> TerminateOnNaN()
    <TerminateOnNaN>
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True
            self.stopped_batch = batch

    def __repr__(self):
        return "<TerminateOnNaN>"
