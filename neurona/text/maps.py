"""2-D maps of word vectors: PCA or t-SNE (scikit-learn) drawn with matplotlib, saved as PNG.
May import: numpy, scikit-learn and matplotlib (lazily).
"""
from __future__ import annotations

import numpy as np


def project_2d(vectors, method="pca", seed=0):
    """(n, d) vectors → (n, 2) coordinates with scikit-learn's PCA or t-SNE (cosine metric)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(vectors)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(2.0, (len(vectors) - 1) / 3))
        return TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca",
                    random_state=seed).fit_transform(vectors)
    raise ValueError(f"project_2d: method must be 'pca' or 'tsne', not {method!r}")


def plot_embedding_map(kv, path, words=None, method="pca", topn=200, seed=0, title=None):
    """Scatter the 2-D projection of `words` (default: the `topn` first, i.e. most frequent) with
    their labels; save to `path` and return the coordinates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    words = list(words) if words is not None else kv.index_to_key[:topn]
    missing = [w for w in words if w not in kv]
    if missing:
        raise KeyError(f"plot_embedding_map: words not in the vocabulary: {missing[:5]}")
    xy = project_2d(kv[words], method, seed)
    fig, ax = plt.subplots(figsize=(9, 9))
    ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.5)
    for (x, y), w in zip(xy, words):
        ax.annotate(w, (x, y), fontsize=7)
    ax.set_title(title or f"word vectors, {method.upper()} ({len(words)} words)")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return xy
