"""The fine-tuning baseline of few-shot learning (Chen et al. 2019, "Baseline"): pretrain an
encoder with a classifier on all meta-training classes at once (ordinary supervised learning),
then for each test episode train a new linear softmax classifier on the frozen encoder's
features of the support set and classify the queries with it.
May import: numpy, neurona, neurona.nn, neurona.optim, neurona.models.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..autograd import no_grad
from ..tensor import Tensor


def fit_linear_head(features, y, n_way, steps=100, learning_rate=0.05, seed=0):
    """(W, b) of a softmax classifier trained by Adam on fixed `features` (n, d) and labels y."""
    from ..optim import Adam

    rng = np.random.default_rng(seed)
    d = features.shape[1]
    w = Tensor((rng.standard_normal((d, n_way)) * 0.01).astype(np.float32), requires_grad=True)
    b = Tensor(np.zeros(n_way, np.float32), requires_grad=True)
    opt = Adam([w, b], learning_rate=learning_rate)
    f, t = Tensor(features.astype(np.float32)), Tensor(np.asarray(y))
    for _ in range(steps):
        loss = ops.cross_entropy(ops.matmul(f, w) + b, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.numpy(), b.numpy()


class FineTuneBaseline:
    """encoder: a neurona model (images → features); a Dense head over the meta-training classes
    is trained with it in `pretrain`, then dropped."""

    def __init__(self, encoder, preprocess=None, head_steps=100, head_lr=0.05):
        self.encoder, self.head_steps, self.head_lr = encoder, int(head_steps), float(head_lr)
        self.preprocess = preprocess or (lambda a: np.asarray(a, dtype=np.float32))

    def pretrain(self, x, y, classes, epochs=1, batch_size=64, learning_rate=1e-3, seed=0, verbose=0):
        """Supervised training of encoder + Dense(len(classes)) on the samples of `classes`."""
        from ..models import Sequential
        from ..nn.layers import Dense, Flatten
        from ..nn.losses import SparseCategoricalCrossentropy
        from ..optim import Adam

        keep = np.isin(y, classes)
        remap = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
        yy = np.array([remap[c] for c in np.asarray(y)[keep].tolist()], dtype=np.int64)
        model = Sequential([self.encoder, Flatten(), Dense(len(classes))])
        model.compile(optimizer=Adam(learning_rate), loss=SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        return model.fit(self.preprocess(x[keep]), yy, epochs=epochs, batch_size=batch_size, seed=seed,
                         verbose=verbose)

    def features(self, x):
        with no_grad():
            h = self.encoder(Tensor(self.preprocess(x)), training=False)
            return h.numpy().reshape(len(x), -1)

    def evaluate(self, episodes):
        """Per-episode query accuracies of a linear head fitted on each support set."""
        accs = []
        for i, ep in enumerate(episodes):
            n_way = len(ep.classes)
            w, b = fit_linear_head(self.features(ep.support_x), ep.support_y, n_way, self.head_steps,
                                   self.head_lr, seed=i)
            pred = (self.features(ep.query_x) @ w + b).argmax(1)
            accs.append(float((pred == ep.query_y).mean()))
        return accs
