"""The one-line epoch summary shown by the progress bar, the log and ``ProgressMonitor``.

``E1/5 [0.64s] Train Loss: 2.3323e+00 Train Metrics: [acc=0.8123] | Val Loss: 2.1000e+00
Val Metrics: [val_acc=0.8400] | LR: 1.00e-03`` (one line), as the original NNHandler writes it:
the validation part only in epochs that validated, the metric brackets only when there are
metrics. The progress bar's postfix is the part from ``Train Loss``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

__all__ = ["debug_lines", "epoch_line", "epoch_summary"]

# Keys of the epoch logs that are not training metrics.
_NOT_METRICS = frozenset({"epoch", "loss", "epoch_time", "lr"})


def _metric_names(logs: Mapping[str, Any]) -> list[str]:
    return [
        k
        for k in logs
        if k not in _NOT_METRICS and not k.startswith(("val_", "lr_group_", "test_"))
    ]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def epoch_summary(
    logs: Mapping[str, Any], metric_names: Iterable[str] | None = None, precision: int = 4
) -> str:
    """``Train Loss: ... [Train Metrics: [...]] [| Val Loss: ... [Val Metrics: [...]]] | LR: ...``.

    Args:
        logs: the epoch logs (``loss``, metrics by name, ``val_loss``, ``val_<name>``, ``lr``).
        metric_names: the metrics to show, in order (default: those found in ``logs``).
        precision: digits after the point of losses (scientific) and metrics.
    """
    names = _metric_names(logs) if metric_names is None else list(metric_names)
    p = int(precision)
    text = f"Train Loss: {_number(logs.get('loss')):.{p}e}"
    train = [f"{n}={_number(logs[n]):.{p}f}" for n in names if n in logs]
    if train:
        text += f" Train Metrics: [{', '.join(train)}]"
    val_loss = _number(logs.get("val_loss"))
    if not math.isnan(val_loss):
        text += f" | Val Loss: {val_loss:.{p}e}"
        val = [f"val_{n}={_number(logs[f'val_{n}']):.{p}f}" for n in names if f"val_{n}" in logs]
        if val:
            text += f" Val Metrics: [{', '.join(val)}]"
    if "lr" in logs:
        text += f" | LR: {_number(logs['lr']):.2e}"
    return text


def epoch_line(
    logs: Mapping[str, Any],
    total_epochs: int | None = None,
    metric_names: Iterable[str] | None = None,
    precision: int = 4,
) -> str:
    """``E<epoch>/<total> [<seconds>s] `` followed by :func:`epoch_summary`."""
    epoch = logs.get("epoch", "?")
    head = f"E{epoch}/{total_epochs}" if total_epochs else f"E{epoch}"
    seconds = _number(logs.get("epoch_time"))
    if not math.isnan(seconds):
        head += f" [{seconds:.2f}s]"
    return f"{head} {epoch_summary(logs, metric_names, precision)}"


def debug_lines(
    logs: Mapping[str, Any], metric_names: Iterable[str] | None, scheduler: Any = None
) -> list[str]:
    """The original's DEBUG records of an epoch: ``Epoch 3 Train Aggregated: Loss=1.2340e-01
    Metrics: acc=0.5000``, the same for ``Val`` when the epoch validated, and, given the
    ``scheduler`` (on the first epoch of a run), which scheduler was stepped."""
    epoch = logs.get("epoch", "?")
    names = _metric_names(logs) if metric_names is None else list(metric_names)

    def aggregated(stage: str, prefix: str) -> str:
        metrics = ", ".join(
            f"{n}={_number(logs[prefix + n]):.4f}" for n in names if prefix + n in logs
        )
        loss = _number(logs.get(prefix + "loss"))
        return f"Epoch {epoch} {stage} Aggregated: Loss={loss:.4e} Metrics: {metrics}"

    out = [aggregated("Train", "")]
    val_loss = _number(logs.get("val_loss"))
    if not math.isnan(val_loss):
        out.append(aggregated("Val", "val_"))
    if scheduler is not None:
        kind = type(scheduler).__name__
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if not math.isnan(val_loss):
                out.append(f"Stepped {kind} scheduler with aggregated val_loss: {val_loss:.4e}")
        else:
            out.append(f"Stepped scheduler {kind}.")
    return out
