"""Learning-rate schedules (course topic 4): step decay, exponential decay, Keras' time-based
decay, and `ReduceLROnPlateau` — AlexNet's "divide the learning rate by 10 when the validation
error stops improving".

A schedule is called with a step count (optimiser iterations, or epochs when a callback drives
it) and returns the learning rate; pass one as an optimiser's `learning_rate`.
May import: neurona.nn._config.
"""
from __future__ import annotations

import math

from ..nn._config import deserialize


class LearningRateSchedule:
    """Base class: `__call__(step) -> learning rate`."""

    def __call__(self, step) -> float:
        raise NotImplementedError(f"{type(self).__name__}.__call__")

    def get_config(self) -> dict:
        return dict(vars(self))

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class StepDecay(LearningRateSchedule):
    """lr = initial_learning_rate · drop^⌊step / step_size⌋: drop the rate by a factor every
    `step_size` steps (e.g. drop=0.1 every 30 epochs).

    >>> [StepDecay(1.0, drop=0.5, step_size=2)(s) for s in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, initial_learning_rate, drop=0.5, step_size=10):
        self.initial_learning_rate = float(initial_learning_rate)
        self.drop, self.step_size = float(drop), int(step_size)

    def __call__(self, step):
        return self.initial_learning_rate * self.drop ** (int(step) // self.step_size)


class ExponentialDecay(LearningRateSchedule):
    """lr = initial_learning_rate · decay_rate^(step / decay_steps) (the exponent is floored when
    `staircase`), the course's α = α₀·e^(−kt) with decay_rate = e^(−k·decay_steps).

    >>> round(ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)(20), 6)
    0.025
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate, self.decay_steps = float(initial_learning_rate), int(decay_steps)
        self.decay_rate, self.staircase = float(decay_rate), bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (math.floor(p) if self.staircase else p)


class InverseTimeDecay(LearningRateSchedule):
    """lr = initial_learning_rate / (1 + decay_rate · step / decay_steps); with decay_steps=1 it
    is Keras' `decay` argument, the course's α = α₀ / (1 + kt)."""

    def __init__(self, initial_learning_rate, decay_steps=1, decay_rate=0.0):
        self.initial_learning_rate, self.decay_steps = float(initial_learning_rate), int(decay_steps)
        self.decay_rate = float(decay_rate)

    def __call__(self, step):
        return self.initial_learning_rate / (1 + self.decay_rate * step / self.decay_steps)


class ReduceLROnPlateau:
    """Multiply an optimiser's learning rate by `factor` when a monitored value has not improved
    by more than `min_delta` for `patience` checks; then wait `cooldown` checks; never go below
    `min_lr`. Call `step(value)` once per epoch with the validation loss (mode='min') or accuracy
    (mode='max').

    >>> from neurona.optim import SGD
    >>> opt = SGD(learning_rate=0.1)
    >>> plateau = ReduceLROnPlateau(opt, factor=0.1, patience=2)
    >>> [round(plateau.step(v), 4) for v in (1.0, 0.9, 0.95, 0.95, 0.95)]
    [0.1, 0.1, 0.1, 0.01, 0.01]
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, min_delta=1e-4, cooldown=0, min_lr=0.0):
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', not {mode!r}")
        self.optimizer, self.mode, self.factor = optimizer, mode, float(factor)
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)
        self.best = math.inf if mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value) -> float:
        """Record one value of the monitored quantity; returns the learning rate now."""
        value = float(value)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(value):
            self.best, self.wait = value, 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = self.optimizer.base_learning_rate
                self.optimizer.learning_rate = max(old * self.factor, self.min_lr)
                self.cooldown_counter, self.wait = self.cooldown, 0
        return self.optimizer.learning_rate


_CLASSES = {c.__name__: c for c in (StepDecay, ExponentialDecay, InverseTimeDecay)}
_NAMES = {"step_decay": StepDecay, "exponential_decay": ExponentialDecay, "inverse_time_decay": InverseTimeDecay}


def get(identifier):
    """A schedule from a config dict or a schedule object."""
    return deserialize(identifier, "learning-rate schedule", _NAMES, _CLASSES, LearningRateSchedule)
