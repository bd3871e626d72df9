"""`Callback` (the hooks), `CallbackList` (calls them in order), `History` and the progress bar.
May import: the standard library.
"""
from __future__ import annotations

import sys
import time


class Callback:
    """Base class: override the hooks you need. `self.model` is the model being trained and
    `self.params` the fit settings (epochs, steps, batch_size, samples, verbose, metrics)."""

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...


class CallbackList:
    """Calls every callback's hook in the given order."""

    def __init__(self, callbacks, model=None, params=None):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params or {})

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)


class History(Callback):
    """What `fit` returns: `history[name]` lists the per-epoch values of each logged quantity."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self):
        return f"<History epochs={len(self.epoch)} keys={sorted(self.history)}>"


def _format_logs(logs):
    return "".join(f" - {k}: {v:.4f}" for k, v in logs.items() if isinstance(v, (int, float)))


def _duration(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s"
    return f"{seconds * 1000:.0f}ms" if seconds >= 0.01 else f"{seconds * 1000:.1f}ms"


class ProgbarLogger(Callback):
    """Keras' progress line. verbose=1: a bar redrawn in place (at most 10 times a second) and one
    final line per epoch; verbose=2: the final line only.

    `Epoch 1/20` then `8/8 [==============================] - 0s 3ms/step - loss: 2.3021 - accuracy: 0.1110`
    """

    def __init__(self, verbose=1, stream=None, width=30):
        super().__init__()
        self.verbose, self.stream, self.width = verbose, stream, width

    def _write(self, text):
        stream = self.stream or sys.stdout
        stream.write(text)
        stream.flush()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._last_draw = time.perf_counter()
        self._done = 0
        self._write(f"Epoch {epoch + 1}/{self.params.get('epochs', '?')}\n")

    def _line(self, done, logs):
        steps = self.params.get("steps")
        elapsed = time.perf_counter() - self._start
        per_step = _duration(elapsed / max(done, 1))
        if not steps:  # an iterable of batches without a length: no total to draw a bar against
            return f"{done}/Unknown - {_duration(elapsed)} {per_step}/step{_format_logs(logs or {})}"
        filled = min(self.width, int(self.width * done / steps))
        bar = "=" * filled if filled == self.width else "=" * max(filled - 1, 0) + ">" + "." * (self.width - filled)
        return f"{done}/{steps} [{bar[:self.width]}] - {_duration(elapsed)} {per_step}/step{_format_logs(logs or {})}"

    def on_train_batch_end(self, batch, logs=None):
        self._done = batch + 1
        now = time.perf_counter()
        if self.verbose == 1 and now - self._last_draw > 0.1:
            self._last_draw = now
            self._write("\r" + self._line(batch + 1, logs))

    def on_epoch_end(self, epoch, logs=None):
        end = "\r" if self.verbose == 1 else ""
        self._write(end + self._line(self.params.get("steps") or self._done, logs) + "\n")
