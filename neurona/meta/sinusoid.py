"""MAML's sinusoid regression (Finn et al. 2017, §5.1): each task is y = A·sin(x − φ) with
amplitude A ~ U[0.1, 5] and phase φ ~ U[0, π], inputs x ~ U[−5, 5]; a learner sees K points of
a new task and must regress the whole curve after a few gradient steps.
May import: numpy, matplotlib (lazily).
"""
from __future__ import annotations

import numpy as np


class SinusoidTasks:
    """Draws sinusoid tasks; `sample(k)` gives one task's (support, query) with K points each.

    >>> (sx, sy), (qx, qy) = SinusoidTasks(seed=0).sample(10)
    >>> sx.shape, qy.shape
    ((10, 1), (10, 1))
    """

    def __init__(self, amplitude=(0.1, 5.0), phase=(0.0, np.pi), x_range=(-5.0, 5.0), seed=0):
        self.amplitude, self.phase, self.x_range = amplitude, phase, x_range
        self.rng = np.random.default_rng(seed)

    def draw(self):
        """(amplitude, phase) of a new task."""
        return float(self.rng.uniform(*self.amplitude)), float(self.rng.uniform(*self.phase))

    def points(self, amp, phase, k):
        x = self.rng.uniform(*self.x_range, (k, 1)).astype(np.float32)
        return x, (amp * np.sin(x - phase)).astype(np.float32)

    def sample(self, k=10, n_query=None):
        amp, phase = self.draw()
        return self.points(amp, phase, k), self.points(amp, phase, n_query or k)

    def batch(self, n_tasks, k=10):
        return [self.sample(k) for _ in range(n_tasks)]


def plot_sinusoid_fit(maml, path, k=10, steps=(0, 1, 10), seed=123, baseline=None, title=None):
    """MAML's figure: one new task's true curve, its K support points and the meta-learned
    model's predictions after each number of gradient steps in `steps` (and, if given, a
    `baseline` MAML-like object — e.g. a pretrained model — after the largest)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # a canvas of its own: pyplot's backend stays
    from matplotlib.figure import Figure

    tasks = SinusoidTasks(seed=seed)
    amp, phase = tasks.draw()
    support = tasks.points(amp, phase, k)
    grid = np.linspace(-5, 5, 200, dtype=np.float32)[:, None]
    fig = Figure(figsize=(11 if baseline else 6, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if baseline is not None else 1, squeeze=False)
    for ax, model, label in zip(axes[0], [maml, baseline], ["MAML", "pretrained, fine-tuned"]):
        if model is None:
            continue
        ax.plot(grid, amp * np.sin(grid - phase), "k-", lw=2, label="true function")
        ax.plot(*support, "k^", ms=8, label=f"{k} support points")
        for s in steps:
            ax.plot(grid, model.predict(support, grid, steps=s), "--", label=f"{label}, {s} step{'s' * (s != 1)}")
        ax.set_ylim(-6, 6)
        ax.set_xlabel("x")
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"sinusoid regression, K = {k}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
