"""Text summary and loss/metric plots of a handler."""

from __future__ import annotations

import math
import os

from ._run_state import RunState
from ._runtime import Runtime
from ._setup import Setup
from .history import History

__all__ = ["summary", "plot_losses", "plot_metrics", "metric_plot_path"]


def summary(
    setup: Setup, state: RunState, runtime: Runtime, show_model_structure: bool = False
) -> str:
    """A human-readable description of the handler's configuration and progress."""
    params = list(runtime.module.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    loss = setup.loss.fn if setup.loss else None
    dist = runtime.dist
    lines = [
        "NNHandler",
        f"  model:        {setup.model.name}({dict(setup.model.kwargs)})",
        f"  model type:   {setup.model_type.value}",
        f"  device:       {runtime.device}",
        f"  parameters:   {trainable:,} trainable / {sum(p.numel() for p in params):,} total",
        f"  optimizer:    {type(runtime.optimizer).__name__ if runtime.optimizer else None}",
        f"  scheduler:    {type(runtime.scheduler).__name__ if runtime.scheduler else None}",
        f"  loss:         {getattr(loss, '__name__', type(loss).__name__)}",
        f"  metrics:      {', '.join(setup.metrics) or None}",
        f"  callbacks:    {', '.join(type(c).__name__ for c in setup.callbacks) or None}",
        f"  epochs done:  {state.epochs_done}",
        f"  distributed:  {dist.distributed} (rank {dist.rank} of {dist.world_size})",
    ]
    if state.history.train_losses:
        lines.append(f"  last loss:    {state.history.train_losses[-1]:.6g}")
    if show_model_structure:
        lines.append(str(runtime.module))
    return "\n".join(lines)


def _pyplot():
    try:
        import matplotlib

        # A backend chosen for this process (Jupyter's inline one sets MPLBACKEND) shows the
        # figure; otherwise Agg, so that a script never blocks on a window.
        if not os.environ.get("MPLBACKEND"):
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
        _save_figure(fig, os.fspath(path))
    else:  # pragma: no cover - interactive use
        plt.show()
    plt.close(fig)


def _save_figure(fig: object, path: str) -> None:
    """``fig`` as an image at ``path``, a local path or a URL (``memory://``, ``s3://``, ...)."""
    from . import _storage

    local = _storage.local_path(path)
    if local is not None:
        folder = os.path.dirname(local)
        if folder:
            os.makedirs(folder, exist_ok=True)
        fig.savefig(local)  # without an extension matplotlib adds .png, as in the original
        return
    if not os.path.splitext(path)[1]:
        path += ".png"  # as matplotlib names a local file without an extension
    _storage.write_remote(path, lambda handle: fig.savefig(handle, format="png"), "figure")


def metric_plot_path(prefix: str, name: str) -> str:
    """``{prefix}_metric_{name}.png``, the name with every non-alphanumeric character as ``_``."""
    safe = "".join(c if c.isalnum() else "_" for c in name)
    return f"{os.fspath(prefix)}_metric_{safe}.png"


def plot_losses(
    history: History, rank: int, log_y_scale: bool = False, save_path: str | None = None
) -> None:
    """Training and validation losses per epoch (rank 0 only); saved to ``save_path`` if given."""
    if rank != 0:
        return
    h = history
    _plot({"train": h.train_losses, "validation": h.val_losses}, "loss", log_y_scale, save_path)


def plot_metrics(
    history: History, rank: int, log_y_scale: bool = False, prefix: str | None = None
) -> None:
    """One figure per metric (rank 0 only), saved to :func:`metric_plot_path` if ``prefix``."""
    if rank != 0:
        return
    h = history
    for name in sorted(set(h.train_metrics) | set(h.val_metrics)):
        series = {"train": h.train_metrics.get(name, []), "validation": h.val_metrics.get(name, [])}
        _plot(series, name, log_y_scale, metric_plot_path(prefix, name) if prefix else None)
