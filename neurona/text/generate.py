"""Generating text one token at a time from a trained language model (a `Sequential` of
`Embedding`, recurrent layers, `Dense`/`Dropout`): temperature sampling with the recurrent state
carried between steps. Each step runs on raw arrays (one GEMM per layer plus the gate arithmetic,
in place in buffers allocated once by `RecurrentStep`), with no Tensor or autograd record, which
is what makes sampling 1,000 characters one by one fast.
May import: os, neurona, neurona.nn, numpy, numba (lazily, through neurona.text._sample_kernels).
"""
from __future__ import annotations

import os

import numpy as np

import neurona as nr
from neurona.nn.layers.core import Dense, Embedding
from neurona.nn.layers.recurrent import RNN, RecurrentStep
from neurona.nn.layers.regularization import Dropout


def _draw_kernel():
    """`_sample_kernels.draw`, or None without numba (or with NEURONA_NO_NUMBA=1): then NumPy."""
    if os.environ.get("NEURONA_NO_NUMBA") == "1":
        return None
    try:
        from ._sample_kernels import draw  # noqa: PLC0415 - numba is heavy to import
    except ImportError:
        return None
    return draw


class Sampler:
    """Step a language model token by token. `step(ids)` takes (N,) token ids and returns the
    next-token logits (N, V); `reset(n)` zeroes the states.

    >>> import neurona as nr
    >>> from neurona.models import Sequential
    >>> from neurona.layers import Embedding, LSTM, Dense
    >>> model = Sequential([Embedding(5, 4), LSTM(8, return_sequences=True), Dense(5)])
    >>> _ = model(nr.zeros((1, 3)))
    >>> s = Sampler(model)
    >>> len(s.generate([1, 2], 10, temperature=0.8, seed=0))
    10
    """

    # an embedding's table projected by the next recurrent layer's input kernel, at most this big
    MAX_FOLDED_BYTES = 16 << 20

    def __init__(self, model):
        self.layers = list(getattr(model, "layers", [model]))
        self.states = None
        self._tables = None  # {layer index: table·kernel + bias} while `generate` runs

    def _fold_tables(self):
        """{i: E·K + b} for each fused recurrent layer i right after an Embedding (table E, input
        kernel K, input bias b): a token's projected input is then one row of it, as in the training
        forward (`_input_projection` folds the same way), instead of a (1, D)·(D, G·H) product per
        token. Built once per `generate` call (the weights cannot change during it); `step` keeps
        reading the weights live."""
        tables = {}
        for i, la in enumerate(self.layers[:-1]):
            nxt = self.layers[i + 1]
            if isinstance(la, Embedding) and (i + 1) in self._steps:
                E, K = la.embeddings.data, nxt.cell.kernel.data
                if E.shape[0] * K.shape[1] * K.dtype.itemsize > self.MAX_FOLDED_BYTES or E.dtype != K.dtype:
                    continue
                table = E @ K
                b = nxt.cell.input_bias()
                if b is not None:
                    table += b.data
                tables[i + 1] = table
        return tables

    def reset(self, n=1):
        self.states, self._steps = {}, {}
        for i, la in enumerate(self.layers):
            if isinstance(la, RNN):
                if hasattr(la.cell, "step_fn") and la.cell.fusable():
                    self._steps[i] = RecurrentStep(la.cell, n)
                    self.states[i] = self._steps[i].states  # the step's buffers, updated in place
                else:
                    dtype = la.cell.kernel.dtype
                    self.states[i] = [np.zeros((n, s), dtype=dtype) for s in la.cell.state_size]

    def step(self, ids):
        ids = np.asarray(ids, dtype=np.int64)
        if self.states is None:
            self.reset(len(ids))
        x, shared, tables = None, False, self._tables
        for i, la in enumerate(self.layers):
            if isinstance(la, Embedding):
                if tables and (i + 1) in tables:
                    continue  # the next layer reads its projected input from the folded table
                x, shared = la.embeddings.data[ids], False
            elif i in self._steps:
                shared, cell = True, la.cell
                if tables and i in tables:
                    x = self._steps[i].step(tables[i][ids])
                else:
                    b = cell.input_bias()
                    x = self._steps[i].step(x @ cell.kernel.data, None if b is None else b.data)
            elif isinstance(la, Dense) and la.activation.__name__ in ("linear", "softmax"):
                x, shared = x @ la.kernel.data, False
                if la.bias is not None:
                    x += la.bias.data  # a softmax output is sampled from its logits (pre-activation)
            elif isinstance(la, Dropout):
                continue
            else:
                with nr.no_grad():
                    x, shared = la(nr.Tensor(x), training=False).data, False
        return x.copy() if shared else x  # never hand out the carried state itself

    def generate(self, prompt, n, temperature=1.0, seed=None):
        """Feed `prompt` (token ids), then draw `n` tokens from softmax(logits / temperature)."""
        if temperature <= 0:
            raise ValueError(f"generate: temperature must be > 0, got {temperature}")
        if len(prompt) == 0:
            raise ValueError("generate: give at least one prompt token")
        rng = np.random.default_rng(seed)
        self.reset(1)
        self._tables = self._fold_tables()
        try:
            for t in prompt[:-1]:
                self.step([t])
            tok, out, ids = prompt[-1], [], np.empty(1, dtype=np.int64)
            draw, work = _draw_kernel(), None
            for _ in range(n):
                ids[0] = tok
                logits = self.step(ids)[0]
                if draw is not None and type(logits) is np.ndarray and logits.dtype in (np.float32, np.float64):
                    # what rng.choice(len(p), p=p / p.sum()) does (same draws, same tokens), compiled
                    if work is None:
                        work = np.empty(logits.shape[0], dtype=np.float64)
                    tok = int(draw(logits, float(temperature), rng.random(), work))
                else:
                    logits = logits.astype(np.float64) / temperature
                    p = np.exp(logits - logits.max())
                    cdf = (p / p.sum()).cumsum()
                    tok = -1 if not np.isfinite(cdf[-1]) else int((cdf / cdf[-1]).searchsorted(rng.random(), side="right"))
                if tok < 0:
                    raise FloatingPointError(f"generate: the model's logits are not finite (NaN or inf) at token {len(out)}")
                out.append(tok)
        finally:
            self._tables = None
        return out
