"""word2vec as the course writes it, with neurona layers and autograd: two `Embedding` tables
(input vectors v, output vectors u), dot products, and the three losses.

- full softmax: −log P(o|c), P(o|c) = exp(u_oᵀv_c) / Σ_w exp(u_wᵀv_c)
- negative sampling: −log σ(u_oᵀv_c) − Σ_k log σ(−u_kᵀv_c), k ~ unigram^0.75
- hierarchical softmax: −Σ_n log σ(±u_nᵀv_c) along the Huffman path of o

`TeachingWord2Vec.fit` trains on (input, target) pairs with a neurona optimiser; the gradients are
autograd's. The fast trainer (`Word2Vec`, numba kernels) implements the same updates by hand;
tests check the two against each other.

>>> import neurona as nr
>>> m = TeachingWord2Vec(vocab_size=5, vector_size=3, objective="softmax")
>>> loss = m.loss(nr.tensor([1, 2]), nr.tensor([3, 4]))
>>> round(loss.item() / 2, 4)   # two pairs, each ≈ −log(1/5) at the start
1.6094

May import: neurona, neurona.nn, neurona.optim, numpy.
"""
from __future__ import annotations

import numpy as np

import neurona as nr
from neurona import ops
from neurona.nn.layers.core import Embedding

from .word2vec import KeyedVectors, cum_table, huffman_codes


def log_sigmoid(x):
    """log σ(x) = −softplus(−x), stable for large |x|."""
    return -ops.softplus(-x)


def softmax_loss(v, U, targets):
    """Σ −log softmax(U·v)[target] over a batch: v (B, D), U (V, D), integer targets (B,)."""
    return ops.cross_entropy(v @ U.T, targets, reduction="sum")


def negative_sampling_loss(v, u, labels):
    """Σ −[y·log σ(uᵀv) + (1 − y)·log σ(−uᵀv)]: v (B, D), u (B, K, D) the output vectors of the
    true word (label 1) and the K noise words (label 0)."""
    f = (u * v.expand_dims(1)).sum(axis=-1)
    y = nr.tensor(np.asarray(labels, dtype=f.dtype))
    return -(y * log_sigmoid(f) + (1 - y) * log_sigmoid(-f)).sum()


def hierarchical_softmax_loss(v, u, codes, valid):
    """Σ −log σ((1 − 2·code)·uᵀv) over each word's path: u (B, L, D) the inner-node vectors,
    codes (B, L) 0/1, valid (B, L) masks the padding of shorter paths."""
    f = (u * v.expand_dims(1)).sum(axis=-1)
    sign = nr.tensor((1.0 - 2.0 * np.asarray(codes)).astype(f.dtype))
    mask = nr.tensor(np.asarray(valid, dtype=f.dtype))
    return -(mask * log_sigmoid(sign * f)).sum()


class TeachingWord2Vec:
    """Skip-gram (sg=1) or CBOW (sg=0) with a full-softmax, negative-sampling or
    hierarchical-softmax output (`objective`), trained by autograd. Small and slow on purpose:
    every gradient is autograd's, for checking and for the course."""

    def __init__(self, vocab_size, vector_size, objective="negative", sg=1, counts=None, negative=5,
                 ns_exponent=0.75, seed=0):
        if objective not in ("softmax", "negative", "hs"):
            raise ValueError(f"TeachingWord2Vec: objective must be softmax, negative or hs, not {objective!r}")
        self.vocab_size, self.vector_size, self.objective, self.sg = int(vocab_size), int(vector_size), objective, sg
        self.negative = int(negative)
        counts = np.ones(self.vocab_size) if counts is None else np.asarray(counts)
        self.rng = np.random.default_rng(seed)
        self.noise = cum_table(counts, ns_exponent)
        if objective == "hs":
            self.codes, self.points, self.codelens = huffman_codes(counts)
        d = self.vector_size
        self.inputs = Embedding(self.vocab_size, d, embeddings_initializer={"class_name": "RandomUniform", "config": {
            "minval": -0.5 / d, "maxval": 0.5 / d}}, name="w2v_in")
        n_out = max(self.vocab_size - 1, 1) if objective == "hs" else self.vocab_size
        self.outputs = Embedding(n_out, d, embeddings_initializer="zeros", name="w2v_out")
        self.inputs.build(None)
        self.outputs.build(None)
        self.inputs.built = self.outputs.built = True

    @property
    def trainable_weights(self):
        return [self.inputs.embeddings, self.outputs.embeddings]

    def input_vectors(self, x):
        """v for a batch: skip-gram's (B,) word ids, or CBOW's (B, W) context ids (−1 = padding),
        averaged."""
        ids = x.numpy() if isinstance(x, nr.Tensor) else np.asarray(x)
        if self.sg:
            return self.inputs(ids)
        valid = ids >= 0
        vecs = self.inputs(np.where(valid, ids, 0))
        w = nr.tensor((valid / np.maximum(valid.sum(axis=1, keepdims=True), 1)).astype(np.float32))
        return (vecs * w.expand_dims(-1)).sum(axis=1)

    def draw_negatives(self, targets):
        """For each target, itself (label 1) then `negative` noise words ≠ target (label 0)."""
        targets = np.asarray(targets)
        noise = np.searchsorted(self.noise, self.rng.integers(0, self.noise[-1], (len(targets), self.negative)))
        noise = np.where(noise == targets[:, None], (noise + 1) % self.vocab_size, noise)
        ids = np.concatenate([targets[:, None], noise], axis=1)
        labels = np.zeros(ids.shape)
        labels[:, 0] = 1
        return ids, labels

    def loss(self, x, targets, negatives=None):
        """The summed loss of predicting `targets` (B,) from inputs `x`; `negatives` = (ids
        (B, K+1), labels) fixes the noise words (otherwise drawn)."""
        t = targets.numpy() if isinstance(targets, nr.Tensor) else np.asarray(targets)
        v = self.input_vectors(x)
        if self.objective == "softmax":
            return softmax_loss(v, self.outputs.embeddings, t)
        if self.objective == "negative":
            ids, labels = negatives if negatives is not None else self.draw_negatives(t)
            return negative_sampling_loss(v, self.outputs(np.asarray(ids)), labels)
        lens = self.codelens[t]
        valid = np.arange(self.points.shape[1])[None, :] < lens[:, None]
        return hierarchical_softmax_loss(v, self.outputs(self.points[t]), self.codes[t], valid)

    def fit(self, pairs, epochs=5, batch_size=64, learning_rate=0.5, optimizer=None, verbose=False):
        """Minimise the mean loss over (input, target) `pairs` (from `skipgram_pairs` or
        `cbow_pairs`) with SGD (or `optimizer`, built on `trainable_weights`); returns the loss of each epoch."""
        from neurona.optim import SGD

        x_all, y_all = pairs
        opt = optimizer or SGD(self.trainable_weights, learning_rate=learning_rate)
        history = []
        for epoch in range(epochs):
            order = self.rng.permutation(len(y_all))
            total = 0.0
            for s in range(0, len(order), batch_size):
                b = order[s:s + batch_size]
                loss = self.loss(x_all[b], y_all[b]) * (1.0 / len(b))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(b)
            history.append(total / len(y_all))
            if verbose:
                print(f"epoch {epoch + 1}: loss {history[-1]:.4f}")
        return history

    @property
    def wv(self):
        kv = KeyedVectors(self.vector_size)
        kv.add_vectors([str(i) for i in range(self.vocab_size)], self.inputs.embeddings.numpy())
        return kv


def skipgram_pairs(encoded, window):
    """(context id, centre id) pairs of every sentence (lists of ids): skip-gram predicts the
    centre word from each context word within `window`, as word2vec.c orders them."""
    xs, ys = [], []
    for sent in encoded:
        for i, centre in enumerate(sent):
            for c in range(max(0, i - window), min(len(sent), i + window + 1)):
                if c != i:
                    xs.append(sent[c])
                    ys.append(centre)
    return np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64)


def cbow_pairs(encoded, window):
    """(context ids padded with −1 to 2·window, centre id) for every position."""
    xs, ys = [], []
    for sent in encoded:
        for i, centre in enumerate(sent):
            ctx = [sent[c] for c in range(max(0, i - window), min(len(sent), i + window + 1)) if c != i]
            if ctx:
                xs.append(ctx + [-1] * (2 * window - len(ctx)))
                ys.append(centre)
    return np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64)
