"""How good are a generator's samples, judged by a neurona classifier trained on the real data.

The figures of the literature (FID, Inception Score) use an ImageNet Inception-v3 network, which
is not to be had here; these are the same formulas on the features and class probabilities of a
classifier of the dataset itself, so their values are not comparable with published FID/IS:
- `frechet_distance`: ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2(Σ_r Σ_g)^½) between Gaussians fitted to the
  classifier's penultimate-layer features of real and generated samples (lower is better; we
  call it the Fréchet classifier distance, FCD);
- `classifier_score`: exp(E_x KL(p(y|x) ‖ p(y))), between 1 and the number of classes (higher:
  confident and varied predictions);
- `class_shares`: the share of generated samples the classifier puts in each class — a generator
  that collapsed onto a few modes leaves classes empty.
May import: numpy, scipy, neurona (no_grad, Tensor).
"""
from __future__ import annotations

import numpy as np

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor


def classifier_outputs(classifier, x, batch_size=256):
    """(features, probabilities) of a Sequential classifier on x: the input of its last layer and
    the softmax of its output (a softmax layer's output is taken as probabilities already)."""
    layers = classifier.layers
    feats, probs = [], []
    with no_grad():
        for i in range(0, len(x), batch_size):
            h = Tensor(np.asarray(x[i:i + batch_size], dtype=np.float32))
            for layer in layers[:-1]:
                h = layer(h, training=False)
            out = layers[-1](h, training=False)
            feats.append(h.numpy().reshape(len(h.numpy()), -1).astype(np.float64))
            o = out.numpy().astype(np.float64)
            if not (np.all(o >= 0) and np.allclose(o.sum(1), 1, atol=1e-4)):
                o = np.exp(o - o.max(1, keepdims=True))
                o /= o.sum(1, keepdims=True)
            probs.append(o)
    return np.concatenate(feats), np.concatenate(probs)


def frechet_distance(features_a, features_b):
    """Fréchet distance between Gaussians fitted to two sets of feature vectors (rows).

    >>> rng = np.random.default_rng(0)
    >>> a = rng.standard_normal((2000, 3))
    >>> round(frechet_distance(a, a + [1.0, 0.0, 0.0]), 2)
    1.0
    """
    from scipy import linalg

    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"frechet_distance: features must be (n, d) with the same d, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # near-singular product: nudge the diagonals (as pytorch-fid does)
        eps = np.eye(len(cov_a)) * 1e-6
        root = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    root = root.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


def classifier_score(probs, eps=1e-12):
    """exp(mean KL(p(y|x) ‖ p(y))) over the rows of class probabilities `probs`.

    >>> classifier_score(np.eye(4))          # confident and evenly spread: the maximum, 4 classes
    4.0
    >>> classifier_score(np.full((4, 4), 0.25))
    1.0
    """
    p = np.asarray(probs, np.float64)
    marginal = p.mean(0, keepdims=True)
    kl = (p * (np.log(p + eps) - np.log(marginal + eps))).sum(1)
    return float(np.round(np.exp(kl.mean()), 10))


def class_shares(probs, num_classes=None):
    """Share of samples whose most probable class is each class (sums to 1).

    >>> class_shares(np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])).tolist()
    [0.75, 0.25]
    """
    p = np.asarray(probs)
    k = num_classes or p.shape[1]
    return np.bincount(p.argmax(1), minlength=k) / len(p)


def evaluate_samples(classifier, real, fake, batch_size=256):
    """The three figures for generated samples `fake` against `real` ones (same preprocessing as the
    classifier's training data), plus the real data's own classifier score for scale."""
    f_real, p_real = classifier_outputs(classifier, real, batch_size)
    f_fake, p_fake = classifier_outputs(classifier, fake, batch_size)
    shares = class_shares(p_fake)
    return {"frechet_classifier_distance": frechet_distance(f_real, f_fake),
            "classifier_score": classifier_score(p_fake), "classifier_score_real": classifier_score(p_real),
            "class_shares": shares.tolist(), "max_class_share": float(shares.max()),
            "empty_classes": int((shares == 0).sum())}
