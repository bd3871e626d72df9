"""Training pictures with matplotlib, drawn on an Agg canvas of their own: files only, no display
needed, and the process's pyplot backend is left as it was (a notebook keeps showing its plots).
May import: matplotlib (lazily, on first use), numpy.
"""
from __future__ import annotations

# Logged each epoch by callbacks but not a curve of the model's quality.
_NOT_CURVES = ("lr", "learning_rate")


def plot_history(history, path, title="", train_label="train", val_label="validation", style="o-", dpi=120,
                 metrics=None):
    """Save the curves of a `fit` History (or its `.history` dict) side by side: one panel per
    quantity, the training values and, when recorded, the validation ones (`val_` keys) on it.

    metrics: the quantities to draw, e.g. `["loss", "accuracy"]`; default `loss` and every
    metric the model was compiled with (a model without metrics gets the loss alone).

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "curves.png")
    >>> plot_history({"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]}, path) == path
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    logs = history.history if hasattr(history, "history") else dict(history)
    if metrics is None:
        metrics = [k for k in logs if not k.startswith("val_") and k not in _NOT_CURVES]
        metrics.sort(key=lambda k: k != "loss")  # the loss first, then the metrics as logged
    else:
        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
        missing = [m for m in metrics if m not in logs]
        if missing:
            raise ValueError(f"plot_history: no {', '.join(map(repr, missing))} in the history; it holds "
                             f"{sorted(logs)} (compile the model with metrics=[...] to record more)")
    if not metrics:
        raise ValueError(f"plot_history: nothing to draw; the history holds {sorted(logs)}")

    fig = Figure(figsize=(5 * len(metrics), 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for key, ax in zip(metrics, axes):
        epochs = range(1, len(logs[key]) + 1)
        ax.plot(epochs, logs[key], style, label=train_label)
        if "val_" + key in logs:
            ax.plot(range(1, len(logs["val_" + key]) + 1), logs["val_" + key], style, label=val_label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path
