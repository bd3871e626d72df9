"""Whether operations record the graph: `no_grad`, `enable_grad`, `set_grad_enabled`.

The switch is per thread, as in PyTorch, so a serving thread under `no_grad` does not turn off
recording for a training thread.
May import: nothing from neurona.
"""
from __future__ import annotations

import functools
import threading


class _State(threading.local):
    enabled = True


state = _State()


def is_grad_enabled() -> bool:
    """Whether operations in this thread record the graph now."""
    return state.enabled


class set_grad_enabled:
    """Context manager (and decorator) that turns graph recording on or off."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)

    def __enter__(self):
        self.prev = state.enabled
        state.enabled = self.mode
        return self

    def __exit__(self, *exc):
        state.enabled = self.prev
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


class no_grad(set_grad_enabled):
    """Operations inside do not record the graph: for inference and parameter updates.

    >>> import neurona as nr
    >>> w = nr.ones(3, requires_grad=True)
    >>> with nr.no_grad():
    ...     w -= 0.1
    >>> w.requires_grad
    True
    """

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Turn recording back on inside a `no_grad` block."""

    def __init__(self):
        super().__init__(True)
