"""Per-thread recording state: which recorder (graph mode's tracer), if any, watches this thread.

The recorder lives in a `ContextVar`, so a thread that traces with `nr.jit` records its own ops
only: eager code in every other thread runs exactly as if nothing were traced (a model server
predicting in many threads while another traces keeps working). Nothing is patched: `Tensor`
and `Function.apply` carry a few hooks, each behind one cheap check of `recording` (how many
recorders are active in any thread), and ask `current()` for this thread's recorder only then.

A recorder is any object with the methods the hooks call (the graph tracer is the one there is):
`record(cls, inputs, params, fn, data, scalar, arrays)` after an op ran (`check_inputs(cls,
inputs)` before), `born(t)` for a tensor created while recording, `read_data(t)`, `read_grad(t)`,
`write_grad(t)`, `inplace(t, sym, op, other)`, `setitem(t, key, value)`, `concrete(t, what)`
(before `bool(t)`, `t.item()`...) and `repr(t)` (a string, or None for the eager repr).
May import: nothing from neurona.
"""
from __future__ import annotations

import contextvars
import threading

_current: contextvars.ContextVar = contextvars.ContextVar("neurona_recorder", default=None)
_lock = threading.Lock()
recording = 0  # recorders active in any thread: the hot paths' gate, read before _current


def current():
    """This thread's recorder, or None."""
    return _current.get() if recording else None


def is_tracing() -> bool:
    """Whether graph mode is recording this thread's ops now (inside `nr.jit` while it traces,
    or a TF1-style `Graph().as_default()`); other threads are not affected.

    >>> import neurona as nr
    >>> seen = []
    >>> f = nr.jit(lambda x: seen.append(nr.autograd.is_tracing()) or x * 2)
    >>> _ = f(nr.ones(2)); _ = f(nr.ones(2))
    >>> seen, nr.autograd.is_tracing()
    ([True], False)
    """
    return recording > 0 and _current.get() is not None


def push(recorder):
    """Make `recorder` this thread's recorder; returns the token that `pop` takes."""
    global recording
    if current() is not None:
        raise RuntimeError("graph: already tracing in this thread")
    with _lock:
        recording += 1
    return _current.set(recorder)


def pop(token) -> None:
    """Undo the `push` that returned `token`."""
    global recording
    _current.reset(token)
    with _lock:
        recording -= 1
