"""The training setup shared by the launched DDP job and the single-process reference run."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from models import TinyNet, accuracy  # noqa: E402

from nn_handler import NNHandler  # noqa: E402
from nn_handler.callbacks import Callback  # noqa: E402

TRAIN_N, VAL_N, PER_RANK_BATCH, WORLD = 64, 37, 8, 2
STOP_AFTER_EPOCH = 1  # 0-based: the stopper ends the first train() after two epochs
# Gradient accumulation over 3 of the 4 batches per epoch (a full and a partial window),
# clipping and an EMA: the module's manual optimization under DDP.
ACCUMULATE = dict(gradient_accumulation_steps=3, gradient_clipping_norm=0.3, ema_decay=0.9)


def datasets() -> tuple[TensorDataset, TensorDataset]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(TRAIN_N + VAL_N, 8, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return TensorDataset(x[:TRAIN_N], y[:TRAIN_N]), TensorDataset(x[TRAIN_N:], y[TRAIN_N:])


class StopOnRankZero(Callback):
    """Asks to stop after epoch STOP_AFTER_EPOCH, on rank 0 only (others must follow)."""

    def on_epoch_end(self, epoch, logs=None):
        if self.handler._rank == 0 and epoch == STOP_AFTER_EPOCH:
            self.handler._stop_training = True


def build(use_distributed: bool | None, batch_size: int) -> NNHandler:
    """The same model, data, loss, metrics and optimizer for both runs (weights seeded)."""
    import torchmetrics

    torch.manual_seed(123)
    handler = NNHandler(TinyNet, use_distributed=use_distributed, hidden=12)
    train, val = datasets()
    handler.set_train_loader(train, batch_size=batch_size, shuffle=False)
    # 6 per batch: rank 0's 19 validation samples make 4 batches, rank 1's 18 make 3.
    handler.set_val_loader(val, batch_size=6)
    handler.set_optimizer(torch.optim.SGD, lr=0.2, momentum=0.5)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.add_metric("acc", accuracy)
    handler.add_metric("tm_acc", torchmetrics.Accuracy(task="multiclass", num_classes=3))
    return handler


def history(handler: NNHandler) -> dict:
    return {
        "train_losses": handler.train_losses,
        "val_losses": handler.val_losses,
        "train_metrics": handler.train_metrics_history,
        "val_metrics": handler.val_metrics_history,
    }


def run_training(handler: NNHandler, extra_callbacks=()) -> None:
    """train(4) stopped after 2 epochs by the rank-0 stopper, then train(1): 3 epochs."""
    stopper = StopOnRankZero()
    handler.add_callback(stopper)
    for cb in extra_callbacks:
        handler.add_callback(cb)
    handler.train(4, progress_bar=False)
    handler.remove_callback(stopper)
    handler.train(1, progress_bar=False)
