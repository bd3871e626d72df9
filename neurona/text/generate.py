"""Generating text one token at a time from a trained language model (a `Sequential` of
`Embedding`, recurrent layers, `Dense`/`Dropout`): temperature sampling with the recurrent state
carried between steps. Each step runs on raw arrays under no-grad (one GEMM per layer plus the
gate arithmetic), which is what makes sampling 1,000 characters one by one fast.
May import: neurona, neurona.nn, numpy.
"""
from __future__ import annotations

import numpy as np

import neurona as nr
from neurona.nn.layers.core import Dense, Embedding
from neurona.nn.layers.recurrent import RNN, RecurrentSequence
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
        self.states = {}
        for i, la in enumerate(self.layers):
            if isinstance(la, RNN):
                dtype = la.cell.kernel.dtype
                self.states[i] = [np.zeros((n, s), dtype=dtype) for s in la.cell.state_size]

    def step(self, ids):
        ids = np.asarray(ids, dtype=np.int64)
        if self.states is None:
            self.reset(len(ids))
        x = None
        for i, la in enumerate(self.layers):
            if isinstance(la, Embedding):
                x = la.embeddings.data[ids]
            elif isinstance(la, RNN) and hasattr(la.cell, "step_fn") and la.cell.fusable():
                cell = la.cell
                z = x @ cell.kernel.data
                if cell.input_bias() is not None:
                    z = z + cell.input_bias().data
                extra = [cell.recurrent_bias().data] if cell.kind == "gru" else []
                y = RecurrentSequence().forward(z[:, None], cell.recurrent_kernel.data, *self.states[i], *extra,
                                                kind=cell.kind)[:, 0]
                sizes = cell.state_size
                self.states[i] = [y[:, :sizes[0]], y[:, sizes[0]:]] if len(sizes) == 2 else [y]
                x = self.states[i][0]
            elif isinstance(la, Dense) and la.activation.__name__ in ("linear", "softmax"):
                x = x @ la.kernel.data
                if la.bias is not None:
                    x = x + la.bias.data  # a softmax output is sampled from its logits (pre-activation)
            elif isinstance(la, Dropout):
                continue
            else:
                with nr.no_grad():
                    x = la(nr.Tensor(x), training=False).data
        return x

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
        tok, out = prompt[-1], []
        for _ in range(n):
            logits = self.step([tok])[0].astype(np.float64) / temperature
            p = np.exp(logits - logits.max())
            tok = int(rng.choice(len(p), p=p / p.sum()))
            out.append(tok)
        return out
