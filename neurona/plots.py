"""Training pictures with matplotlib (Agg backend: files only, no display needed).
May import: matplotlib (lazily, on first use), numpy.
"""
from __future__ import annotations


def plot_history(history, path, title="", train_label="train", val_label="validation", style="o-", dpi=120):
    """Save loss and accuracy curves of a `fit` History (train and `val_` keys) side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history.epoch) + 1)
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        ax.plot(epochs, history.history[key], style, label=train_label)
        if "val_" + key in history.history:
            ax.plot(epochs, history.history["val_" + key], style, label=val_label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
