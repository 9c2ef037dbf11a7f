"""Text summary and loss/metric plots of a handler."""

from __future__ import annotations

import math
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING

from .._env import storage as _storage
from .._state.run_state import RunState
from .._state.runtime import Runtime
from .._state.setup import Setup
from ..history import History

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


def _pyplot() -> ModuleType:
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


def _plot(
    series: dict[str, tuple[list[int], list[float]]], title: str, log_y: bool, path: str | None
) -> Figure:
    """One figure of ``label -> (epochs, values)`` curves; saved to ``path`` (and closed) when
    given, else shown. The figure is returned either way."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (epochs, values) in series.items():
        # NaN marks epochs without validation (the original's histories): leave them out.
        points = [(e, v) for e, v in zip(epochs, values) if not math.isnan(v)]
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
        plt.close(fig)  # written: the figure stays usable, pyplot no longer holds it
    else:
        plt.show()
        _shown_once(fig)
    return fig


def _shown_once(fig: Figure) -> None:
    """In Jupyter, keep a figure that the inline backend has just displayed from being displayed
    again as the cell's value (``handler.plot_losses()`` as a cell's last line, as the original's
    notebooks end): it shows once, as the original's ``None`` did, until the cell ends."""
    import matplotlib

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or "inline" not in matplotlib.get_backend():
        return

    def forget() -> None:
        fig.__dict__.pop("_ipython_display_", None)
        shell.events.unregister("post_execute", forget)

    # IPython calls an object's _ipython_display_ instead of rendering it.
    fig._ipython_display_ = lambda: None  # type: ignore[attr-defined]  # IPython reads it
    shell.events.register("post_execute", forget)


def _curves(
    train: list[float], val: list[float], val_epochs: list[int]
) -> dict[str, tuple[list[int], list[float]]]:
    return {
        "train": (list(range(1, len(train) + 1)), train),
        "validation": (val_epochs[: len(val)], val),
    }


def _save_figure(fig: Figure, path: str) -> None:
    """``fig`` as an image at ``path``, a local path or a URL (``memory://``, ``s3://``, ...)."""
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
    history: History,
    rank: int,
    log_y_scale: bool = False,
    save_path: str | None = None,
    validate_every: int = 1,
) -> Figure | None:
    """Training and validation losses per epoch (rank 0 only; other ranks get ``None``), the
    validation points at the epochs that validated; saved to ``save_path`` if given.

    ``validate_every`` places the validation points of a history that does not record their
    epochs (see :meth:`History.validation_epochs`).
    """
    if rank != 0:
        return None
    h = history
    curves = _curves(h.train_losses, h.val_losses, h.validation_epochs(validate_every))
    return _plot(curves, "loss", log_y_scale, save_path)


def plot_metrics(
    history: History,
    rank: int,
    log_y_scale: bool = False,
    prefix: str | None = None,
    validate_every: int = 1,
) -> dict[str, Figure] | None:
    """One figure per metric, by name (rank 0 only; other ranks get ``None``), saved to
    :func:`metric_plot_path` if ``prefix``."""
    if rank != 0:
        return None
    h = history
    val_epochs = h.validation_epochs(validate_every)
    figures = {}
    for name in sorted(set(h.train_metrics) | set(h.val_metrics)):
        curves = _curves(h.train_metrics.get(name, []), h.val_metrics.get(name, []), val_epochs)
        path = metric_plot_path(prefix, name) if prefix else None
        figures[name] = _plot(curves, name, log_y_scale, path)
    return figures
