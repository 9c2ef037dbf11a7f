"""What the ``nn-handler`` command shows: the user's model at the start, the outcome at the end.

Lightning's own model summary lists the generated module's internals (the metric dicts, a FLOPs
column that reads 0 without an example input); :class:`HandlerModelSummary` lists the user's
model only. :func:`fit_report` is the text printed after ``fit``: the last epoch's line, as the
Python API's console shows it, and where the files went.
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint, ModelSummary
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.model_summary import get_human_readable_count

from ..._ops.epoch_summary import epoch_line
from ..hooks.autosaver import AutoSaver

__all__ = ["HandlerModelSummary", "fit_report", "model_summary"]


def _count(number: int) -> str:
    return get_human_readable_count(number).strip()


def model_summary(model: Any) -> str:
    """A table of ``model``'s direct children (name, type, parameters) and its totals."""
    rows = [("Name", "Type", "Params")]
    for name, child in model.named_children():
        count = sum(p.numel() for p in child.parameters())
        rows.append((name, type(child).__name__, _count(count)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lines.append(
        f"{type(model).__name__}: {_count(total)} parameters ({_count(trainable)} trainable)"
    )
    return "\n".join(lines)


class HandlerModelSummary(ModelSummary):
    """Lightning's ``ModelSummary`` callback, showing the user's model (``pl_module.model``).

    Being a ``ModelSummary``, it takes the place of the Trainer's default one; a Trainer built
    with ``enable_model_summary=False`` shows nothing.
    """

    def __init__(self) -> None:
        super().__init__(max_depth=1)

    def on_fit_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        if trainer.is_global_zero:
            rank_zero_info("\n" + model_summary(pl_module.model))


def _shown(path: str) -> str:
    """``path`` relative to the current directory when it lies inside it."""
    relative = os.path.relpath(os.path.abspath(path))
    return path if relative.startswith("..") else relative


def fit_report(trainer: L.Trainer, module: Any) -> list[str]:
    """The lines printed after ``fit``: the last epoch's summary and the files written."""
    lines = []
    logs = getattr(module, "epoch_logs", None)  # a plain LightningModule has none
    if logs:
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        lines.append(epoch_line(logs, total, getattr(module, "metric_names", None)))
    for callback in trainer.callbacks:  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute
        if isinstance(callback, AutoSaver):
            last = callback.bookkeeping.last_saved
            if last:
                folder, name = os.path.split(last)
                lines.append(f"Auto-saves: {_shown(folder or '.')}{os.sep} (last: {name})")
        elif isinstance(callback, Checkpoint):
            path = getattr(callback, "last_model_path", "") or getattr(
                callback, "best_model_path", ""
            )  # ModelCheckpoint's; other Checkpoint kinds may not have them
            if path:
                lines.append(f"Checkpoint: {_shown(path)}")
    if trainer.loggers and trainer.log_dir:
        lines.append(f"Logs and config: {_shown(trainer.log_dir)}{os.sep}")
    return lines
