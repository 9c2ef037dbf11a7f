"""Text summary and loss/metric plots of a handler."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .handler import NNHandler

__all__ = ["summary", "plot_losses", "plot_metrics", "metric_plot_path"]


def summary(handler: NNHandler, show_model_structure: bool = False) -> str:
    """A human-readable description of the handler's configuration and progress."""
    h = handler
    lines = [
        "NNHandler",
        f"  model:        {h._model_class.__name__}({h._model_kwargs})",
        f"  model type:   {h._model_type.value}",
        f"  device:       {h._device}",
        f"  parameters:   {h.count_parameters():,} trainable / "
        f"{h.count_parameters(trainable_only=False):,} total",
        f"  optimizer:    {type(h._optimizer).__name__ if h._optimizer else None}",
        f"  scheduler:    {type(h._scheduler).__name__ if h._scheduler else None}",
        f"  loss:         {getattr(h.loss_fn, '__name__', type(h.loss_fn).__name__)}",
        f"  metrics:      {', '.join(h._metrics.names()) or None}",
        f"  callbacks:    {', '.join(type(c).__name__ for c in h._callbacks) or None}",
        f"  epochs done:  {h._history.epochs_done}",
        f"  distributed:  {h._distributed} (rank {h._rank} of {h._world_size})",
    ]
    if h._history.train_losses:
        lines.append(f"  last loss:    {h._history.train_losses[-1]:.6g}")
    if show_model_structure:
        lines.append(str(h._module))
    return "\n".join(lines)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(
            "Plotting needs matplotlib: pip install 'nn-handler[examples]' or matplotlib."
        ) from err
    return plt


def _plot(series: dict[str, list[float]], title: str, log_y: bool, path: str | None) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values in series.items():
        # NaN marks epochs without validation: leave them out of the curve.
        points = [(i, v) for i, v in enumerate(values, start=1) if not math.isnan(v)]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_title(title)
    if log_y:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path:
        folder = os.path.dirname(os.fspath(path))
        if folder:
            os.makedirs(folder, exist_ok=True)
        fig.savefig(path)  # without an extension matplotlib adds .png, as in the original
    else:  # pragma: no cover - interactive use
        plt.show()
    plt.close(fig)


def metric_plot_path(prefix: str, name: str) -> str:
    """``{prefix}_metric_{name}.png``, the name with every non-alphanumeric character as ``_``."""
    safe = "".join(c if c.isalnum() else "_" for c in name)
    return f"{os.fspath(prefix)}_metric_{safe}.png"


def plot_losses(handler: NNHandler, log_y_scale: bool = False, save_path: str | None = None):
    """Training and validation losses per epoch (rank 0 only); saved to ``save_path`` if given."""
    if handler._rank != 0:
        return
    series = {"train": handler.train_losses, "validation": handler.val_losses}
    _plot(series, "loss", log_y_scale, save_path)


def plot_metrics(handler: NNHandler, log_y_scale: bool = False, prefix: str | None = None):
    """One figure per metric (rank 0 only), saved to :func:`metric_plot_path` if ``prefix``."""
    if handler._rank != 0:
        return
    train, val = handler.train_metrics_history, handler.val_metrics_history
    for name in sorted(set(train) | set(val)):
        series = {"train": train.get(name, []), "validation": val.get(name, [])}
        _plot(series, name, log_y_scale, metric_plot_path(prefix, name) if prefix else None)
