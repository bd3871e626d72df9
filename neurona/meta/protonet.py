"""Prototypical Networks (Snell, Swersky and Zemel 2017): an encoder f maps images to vectors;
each class's prototype is the mean of its support embeddings, c_k = (1/K) Σ f(x_i); a query is
classified by a softmax over negative squared Euclidean distances, p(y = k | x) ∝ exp(−‖f(x) − c_k‖²),
and the encoder is trained episode by episode on the query cross-entropy.
May import: numpy, neurona, neurona.optim.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..autograd import no_grad
from ..tensor import Tensor


def prototypes(support_emb, support_y, n_way):
    """(n_way, d) class means of the support embeddings (labels 0..n_way−1)."""
    onehot = np.zeros((n_way, len(support_y)), dtype=support_emb.numpy().dtype)
    onehot[np.asarray(support_y), np.arange(len(support_y))] = 1.0
    counts = onehot.sum(1, keepdims=True)
    if (counts == 0).any():
        raise ValueError(f"prototypes: classes {np.flatnonzero(counts[:, 0] == 0).tolist()} have no support sample")
    return ops.matmul(Tensor(onehot / counts), support_emb)


def squared_distances(a, b):
    """(n, m) squared Euclidean distances between the rows of a (n, d) and b (m, d)."""
    return (ops.sum(a * a, axis=1, keepdims=True) - 2.0 * ops.matmul(a, b.T)
            + ops.sum(b * b, axis=1).reshape(1, -1))


def prototypical_loss(support_emb, support_y, query_emb, query_y, n_way):
    """(loss, accuracy) of the queries classified by their nearest prototype.

    >>> import neurona as nr
    >>> s, q = nr.tensor([[0.0, 0.0], [4.0, 0.0]]), nr.tensor([[1.0, 0.0]])
    >>> loss, acc = prototypical_loss(s, np.array([0, 1]), q, np.array([0]), 2)
    >>> round(loss.item(), 4), acc   # −log softmax(−[1, 9])[0] = log(1 + e^−8)
    (0.0003, 1.0)
    """
    logits = -squared_distances(query_emb, prototypes(support_emb, support_y, n_way))
    y = np.asarray(query_y)
    loss = ops.cross_entropy(logits, Tensor(y))
    acc = float((logits.numpy().argmax(1) == y).mean())
    return loss, acc


def mean_ci95(values):
    """(mean, half-width of the 95% confidence interval 1.96·s/√n) of per-episode accuracies."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(1.96 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


class ProtoNet:
    """Trains an encoder (any neurona model or layer: images → (n, d) or feature maps, flattened)
    on episodes with the prototypical loss.

    >>> from neurona.models import Sequential
    >>> from neurona.layers import Dense
    >>> from neurona.meta import EpisodeSampler
    >>> x, y = np.random.default_rng(0).standard_normal((40, 3)).astype("float32"), np.repeat(np.arange(4), 10)
    >>> net = ProtoNet(Sequential([Dense(4, input_dim=3)]))
    >>> ep = EpisodeSampler(x, y, n_way=2, k_shot=2, n_query=3).sample()
    >>> 0 <= net.train_step(ep)["accuracy"] <= 1
    True
    """

    def __init__(self, encoder, optimizer=None, preprocess=None):
        from ..optim import Adam

        self.encoder = encoder
        self.optimizer = optimizer or Adam(learning_rate=1e-3)
        self.preprocess = preprocess or (lambda a: np.asarray(a, dtype=np.float32))

    def embed(self, x, training=False):
        h = self.encoder(Tensor(self.preprocess(x)), training=training)
        return h.reshape(h.shape[0], -1)

    def train_step(self, episode):
        n_way = len(episode.classes)
        s = self.embed(episode.support_x, training=True)
        if not self.optimizer.bound:
            self.optimizer.bind(self.encoder.trainable_weights)
        q = self.embed(episode.query_x, training=True)
        loss, acc = prototypical_loss(s, episode.support_y, q, episode.query_y, n_way)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.item()), "accuracy": acc}

    def evaluate(self, episodes):
        """Per-episode query accuracies on the given episodes (inference mode)."""
        accs = []
        with no_grad():
            for ep in episodes:
                _, acc = prototypical_loss(self.embed(ep.support_x), ep.support_y, self.embed(ep.query_x),
                                           ep.query_y, len(ep.classes))
                accs.append(acc)
        return accs
