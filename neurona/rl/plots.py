"""Pictures of gridworld solutions and learning curves (matplotlib, Agg backend: files only).

`plot_policy` draws a policy as arrows on the grid (every action of an (S, A) stochastic policy
with its probability as the arrow's length, so the random policy shows four short arrows);
`plot_values` draws V as a heat map with the numbers; `plot_curves` draws episode returns.
May import: numpy, matplotlib (lazily), neurona.rl.gridworld.
"""
from __future__ import annotations

import numpy as np

from .gridworld import _MOVES, GridWorld


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _frame(ax, world: GridWorld):
    rows, cols = world.shape
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
    ax.grid(which="minor", color="0.6")
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_aspect("equal")
    for r, c in world.walls:
        ax.add_patch(_rect(r, c, "0.25"))
    for r, c in world.terminals:
        ax.add_patch(_rect(r, c, "#9fd89f"))
        reward = world.terminal_rewards.get((r, c))
        ax.text(c, r, "T" if reward is None else f"{reward:+g}", ha="center", va="center", fontsize=12)


def _rect(r, c, colour):
    from matplotlib.patches import Rectangle

    return Rectangle((c - 0.5, r - 0.5), 1, 1, color=colour, zorder=0)


def plot_policy(world: GridWorld, policy, path=None, title="", ax=None):
    """Arrows of `policy` on the grid: an (S,) array of actions, or an (S, A) matrix of
    probabilities (each arrow as long as its probability). Saves to `path` when given; returns
    the figure."""
    plt = _pyplot()
    policy = np.asarray(policy)
    if policy.ndim == 1:
        pi = np.zeros((world.n_states, len(_MOVES)))
        pi[np.arange(world.n_states), policy.astype(int)] = 1.0
    else:
        pi = policy
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.9 * world.shape[1] + 0.6, 0.9 * world.shape[0] + 0.6))
    _frame(ax, world)
    for s, (r, c) in enumerate(world.cells):
        if (r, c) in world.terminals:
            continue
        for a, (dr, dc) in enumerate(_MOVES):
            if pi[s, a] > 1e-9:
                length = 0.38 * pi[s, a] ** 0.5 if policy.ndim == 2 else 0.38
                ax.arrow(c, r, dc * length, dr * length, head_width=0.12, head_length=0.1,
                         length_includes_head=True, color="tab:blue")
    ax.set_title(title)
    return _finish(fig or ax.figure, path)


def plot_values(world: GridWorld, V, path=None, title="", ax=None, cmap="viridis"):
    """V as a heat map on the grid with each value printed in its cell (walls left blank)."""
    plt = _pyplot()
    grid = world.grid(V)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.0 * world.shape[1] + 1.4, 0.9 * world.shape[0] + 0.6))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap)
    for r, c in world.walls:
        ax.add_patch(_rect(r, c, "0.25"))
    for r, c in world.cells:
        ax.text(c, r, f"{grid[r, c]:.3g}", ha="center", va="center", color="w", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    return _finish(fig or ax.figure, path)


def plot_curves(curves: dict, path=None, title="", xlabel="environment steps", ylabel="episode return",
                hline=None, smooth=1):
    """Line plot of {label: (x, y)} curves (y smoothed by a running mean over `smooth` points)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (x, y) in curves.items():
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if smooth > 1 and len(y) >= smooth:
            y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
            x = x[smooth - 1:]
        ax.plot(x, y, label=label)
    if hline is not None:
        ax.axhline(hline, color="0.5", ls="--", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    ax.set_title(title)
    return _finish(fig, path)


def _finish(fig, path):
    if path is not None:
        from pathlib import Path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        _pyplot().close(fig)
    return fig
