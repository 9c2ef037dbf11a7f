"""Text summary and loss/metric plots of a handler."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .handler import NNHandler

__all__ = ["summary", "plot_losses", "plot_metrics"]


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
        if values:
            ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_title(title)
    if log_y:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path:
        fig.savefig(path if str(path).endswith(".png") else f"{path}.png")
    else:  # pragma: no cover - interactive use
        plt.show()
    plt.close(fig)


def plot_losses(handler: NNHandler, log_y_scale: bool = False, save_path: str | None = None):
    if handler._rank != 0:
        return
    h = handler._history
    _plot({"train": h.train_losses, "validation": h.val_losses}, "loss", log_y_scale, save_path)


def plot_metrics(handler: NNHandler, log_y_scale: bool = False, prefix: str | None = None):
    if handler._rank != 0:
        return
    h = handler._history
    for name in sorted(set(h.train_metrics) | set(h.val_metrics)):
        series = {"train": h.train_metrics.get(name, []), "validation": h.val_metrics.get(name, [])}
        _plot(series, name, log_y_scale, f"{prefix}_{name}.png" if prefix else None)
