"""The n-gram language model of the course: P(w_n | w_1..w_{n−1}) = count(w_1..w_n) /
count(w_1..w_{n−1}), with add-k smoothing so that unseen n-grams keep some probability
((count + k) / (count(context) + k·V); k = 1 is Laplace). The baseline a recurrent language
model is compared with, on the same split, in nats per token.

>>> lm = NGramLM(order=2, vocab_size=3, k=1.0).fit([0, 1, 0, 1, 0, 2])
>>> round(lm.prob([0], 1), 4)   # count(0,1) = 2, count(0) = 3: (2 + 1) / (3 + 3)
0.5

May import: numpy.
"""
from __future__ import annotations

import numpy as np


class NGramLM:
    """Counts of n-grams over integer token ids in [0, vocab_size)."""

    def __init__(self, order=3, vocab_size=None, k=1.0):
        if order < 1:
            raise ValueError(f"NGramLM: order must be >= 1, got {order}")
        if k <= 0:
            raise ValueError(f"NGramLM: k must be > 0 (k = 0 gives zero probability to unseen n-grams), got {k}")
        self.order, self.vocab_size, self.k = int(order), vocab_size, float(k)

    def _keys(self, ids, n):
        """One int64 key per n-gram ending at each position >= n − 1 (base-V digits)."""
        key = np.zeros(len(ids) - n + 1, dtype=np.int64)
        for j in range(n):
            key = key * self.vocab_size + ids[j:len(ids) - n + 1 + j]
        return key

    def fit(self, ids):
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or len(ids) < self.order:
            raise ValueError(f"NGramLM.fit: need a 1-D sequence of at least {self.order} token ids, got shape {ids.shape}")
        if self.vocab_size is None:
            self.vocab_size = int(ids.max()) + 1
        if float(self.vocab_size) ** self.order >= 2**62:
            raise ValueError(f"NGramLM: vocab_size^order = {self.vocab_size}^{self.order} does not fit the int64 keys")
        self.tables = {}
        for n in (self.order, self.order - 1):
            if n == 0:
                self.tables[0] = (np.zeros(1, dtype=np.int64), np.array([len(ids)]))
                continue
            # contexts are counted where a token follows them, so Σ_w count(ctx, w) = count(ctx)
            keys, counts = np.unique(self._keys(ids if n == self.order else ids[:-1], n), return_counts=True)
            self.tables[n] = (keys, counts)
        return self

    @staticmethod
    def _lookup(table, keys):
        known, counts = table
        pos = np.clip(np.searchsorted(known, keys), 0, len(known) - 1)
        return np.where(known[pos] == keys, counts[pos], 0)

    def log_probs(self, ids):
        """log P(token | previous order−1 tokens) for every position from order−1 on."""
        ids = np.asarray(ids, dtype=np.int64)
        n = self.order
        full = self._lookup(self.tables[n], self._keys(ids, n))
        if n == 1:
            ctx = np.full(len(full), self.tables[0][1][0])
        else:
            ctx = self._lookup(self.tables[n - 1], self._keys(ids[:-1], n - 1))
        return np.log((full + self.k) / (ctx + self.k * self.vocab_size))

    def cross_entropy(self, ids):
        """Mean negative log-likelihood in nats per token (perplexity = exp of it)."""
        return float(-self.log_probs(ids).mean())

    def prob(self, context, token):
        ids = list(context)[-(self.order - 1):] if self.order > 1 else []
        return float(np.exp(self.log_probs(np.array(ids + [token]))[-1]))

    def sample(self, context, n, rng=None):
        """Continue `context` with `n` tokens drawn from the model."""
        rng = rng or np.random.default_rng()
        out = list(context)
        for _ in range(n):
            ctx = out[-(self.order - 1):] if self.order > 1 else []
            cand = np.array([ctx + [t] for t in range(self.vocab_size)], dtype=np.int64)
            logp = np.array([self.log_probs(c)[-1] for c in cand])
            p = np.exp(logp - logp.max())
            out.append(int(rng.choice(self.vocab_size, p=p / p.sum())))
        return out[len(context):]
