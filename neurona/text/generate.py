"""Generating text one token at a time from a trained language model (a `Sequential` of
`Embedding`, recurrent layers, `Dense`/`Dropout`): temperature sampling with the recurrent state
carried between steps. Each step runs on raw arrays (one GEMM per layer plus the gate arithmetic,
in place in buffers allocated once by `RecurrentStep`), with no Tensor or autograd record, which
is what makes sampling 1,000 characters one by one fast.
May import: neurona, neurona.nn, numpy.
"""
from __future__ import annotations

import numpy as np

import neurona as nr
from neurona.nn.layers.core import Dense, Embedding
from neurona.nn.layers.recurrent import RNN, RecurrentStep
from neurona.nn.layers.regularization import Dropout


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

    def __init__(self, model):
        self.layers = list(getattr(model, "layers", [model]))
        self.states = None

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
        x, shared = None, False
        for i, la in enumerate(self.layers):
            if isinstance(la, Embedding):
                x, shared = la.embeddings.data[ids], False
            elif i in self._steps:
                shared, cell = True, la.cell
                z = x @ cell.kernel.data
                b = cell.input_bias()
                if b is not None:
                    z += b.data
                x = self._steps[i].step(z)
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
        for t in prompt[:-1]:
            self.step([t])
        tok, out, ids = prompt[-1], [], np.empty(1, dtype=np.int64)
        for _ in range(n):
            ids[0] = tok
            logits = self.step(ids)[0].astype(np.float64) / temperature
            p = np.exp(logits - logits.max())
            # what rng.choice(len(p), p=p / p.sum()) does (same draws, same tokens), without its checks
            cdf = (p / p.sum()).cumsum()
            cdf /= cdf[-1]
            tok = int(cdf.searchsorted(rng.random(), side="right"))
            out.append(tok)
        return out
