"""Few-shot episodes: disjoint meta-train / meta-validation / meta-test class splits and an
N-way K-shot episode sampler (Vinyals et al. 2016; Finn et al. 2017; Snell et al. 2017).

An episode draws N classes, then K support and Q query samples of each; labels are relabelled
0..N−1 in the order the classes were drawn, so a learner never sees the dataset's class ids.
May import: numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def split_classes(labels, n_train, n_val, n_test=None, seed=0):
    """Three disjoint arrays of class ids drawn (seeded) from the classes present in `labels`:
    `n_train` for meta-training, `n_val` for meta-validation, `n_test` (default: the rest) for
    meta-testing.

    >>> tr, va, te = split_classes(np.repeat(np.arange(10), 3), 6, 2, seed=0)
    >>> len(tr), len(va), len(te), len(set(tr) | set(va) | set(te))
    (6, 2, 2, 10)
    """
    classes = np.unique(np.asarray(labels))
    n_test = len(classes) - n_train - n_val if n_test is None else n_test
    if min(n_train, n_val, n_test) < 0 or n_train + n_val + n_test > len(classes):
        raise ValueError(f"split_classes: {n_train} + {n_val} + {n_test} classes asked for, but the labels "
                         f"hold {len(classes)} classes")
    order = np.random.default_rng(seed).permutation(classes)
    return (np.sort(order[:n_train]), np.sort(order[n_train:n_train + n_val]),
            np.sort(order[n_train + n_val:n_train + n_val + n_test]))


@dataclass
class Episode:
    """One N-way K-shot task: support (N·K) and query (N·Q) samples with labels 0..N−1, and the
    dataset class of each label."""

    support_x: np.ndarray
    support_y: np.ndarray
    query_x: np.ndarray
    query_y: np.ndarray
    classes: np.ndarray


class EpisodeSampler:
    """Draws N-way K-shot episodes from the samples of `classes` (default: every class in y).

    >>> x, y = np.arange(60.0)[:, None], np.repeat(np.arange(6), 10)
    >>> ep = EpisodeSampler(x, y, n_way=3, k_shot=2, n_query=4, seed=0).sample()
    >>> ep.support_x.shape, ep.query_x.shape, sorted(set(ep.support_y.tolist()))
    ((6, 1), (12, 1), [0, 1, 2])
    """

    def __init__(self, x, y, classes=None, n_way=5, k_shot=1, n_query=15, seed=0):
        self.x, y = x, np.asarray(y)
        self.n_way, self.k_shot, self.n_query = int(n_way), int(k_shot), int(n_query)
        if self.n_way < 1 or self.k_shot < 1 or self.n_query < 0:
            raise ValueError(f"EpisodeSampler: n_way and k_shot must be >= 1 and n_query >= 0, got "
                             f"{n_way}, {k_shot}, {n_query}")
        if len(y) != len(x):
            raise ValueError(f"EpisodeSampler: x has {len(x)} samples but y has {len(y)} labels")
        self.classes = np.unique(y) if classes is None else np.asarray(classes)
        if self.n_way > len(self.classes):
            raise ValueError(f"EpisodeSampler: {self.n_way}-way episodes need {self.n_way} classes, "
                             f"only {len(self.classes)} given")
        self.members = {}
        need = self.k_shot + self.n_query
        for c in self.classes.tolist():
            idx = np.flatnonzero(y == c)
            if len(idx) < need:
                raise ValueError(f"EpisodeSampler: class {c!r} has {len(idx)} samples, fewer than the "
                                 f"k_shot + n_query = {self.k_shot} + {self.n_query} = {need} an episode takes")
            self.members[c] = idx
        self.rng = np.random.default_rng(seed)

    def sample(self):
        """One episode (see `Episode`)."""
        chosen = self.rng.choice(self.classes, size=self.n_way, replace=False)
        support, query = [], []
        for c in chosen.tolist():
            idx = self.rng.choice(self.members[c], size=self.k_shot + self.n_query, replace=False)
            support.append(idx[:self.k_shot])
            query.append(idx[self.k_shot:])
        s, q = np.concatenate(support), np.concatenate(query)
        return Episode(self.x[s], np.repeat(np.arange(self.n_way), self.k_shot), self.x[q],
                       np.repeat(np.arange(self.n_way), self.n_query), chosen)

    def episodes(self, n):
        """`n` episodes, one after another."""
        for _ in range(n):
            yield self.sample()
