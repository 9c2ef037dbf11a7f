"""The learning-rate range test (Lightning's ``Tuner.lr_find``) on a handler's setup."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import LearningRateFinder
from lightning.pytorch.tuner import Tuner

from ..._state.run_state import RunState
from ..._state.runtime import Runtime
from ..._state.setup import Setup
from ...checkpoint._rng import capture_rng, restore_rng
from ..steps.learning_rate import scale_learning_rate
from ..steps.module import HandlerModule
from .inputs import loaders, module_arguments, quiet_lightning
from .trainer_factory import accelerator_for

__all__ = ["LRFinderResult", "check_not_a_finder", "find_lr"]


@dataclass(frozen=True)
class LRFinderResult:
    """What :meth:`NNHandler.find_lr` found.

    Attributes:
        suggestion: the learning rate at the steepest descent of the loss curve (``None`` when
            the search gave too few finite points).
        lrs: the learning rate of each search step.
        losses: the smoothed training loss of each search step.
        applied: whether ``suggestion`` was given to the handler's optimizer.
    """

    suggestion: float | None
    lrs: list[float]
    losses: list[float]
    applied: bool = False


def check_not_a_finder(callback: Any) -> None:
    """Refuse Lightning's ``LearningRateFinder`` for ``train()``.

    Its search steps a scheduler of its own after each batch, which Lightning does only under
    automatic optimization; ``train()``'s module optimizes manually (its accumulation, clipping
    and AMP), so the search would run at one rate.

    Raises:
        TypeError: ``callback`` is a ``LearningRateFinder``.
    """
    if isinstance(callback, LearningRateFinder):
        raise TypeError(
            "LearningRateFinder cannot run inside train() (it needs Lightning's automatic "
            "optimization): call handler.find_lr(..., apply=True) before train(), or give it to "
            "your own Trainer fitting handler.to_lightning_module()."
        )


def find_lr(
    setup: Setup,
    runtime: Runtime,
    min_lr: float,
    max_lr: float,
    num_training: int,
    mode: str,
    early_stop_threshold: float | None,
    apply: bool,
) -> LRFinderResult:
    """Run Lightning's range test on the handler's model, optimizer and training data.

    The search trains ``num_training`` steps from ``min_lr`` to ``max_lr``; Lightning then
    restores the weights and the optimizer state from the checkpoint it took before (in a
    temporary directory, removed after). The handler's history, step counter, EMA and the random
    number generators are left as they were, so a ``train()`` after it runs as it would have.
    """
    if runtime.optimizer is None or setup.loss is None or setup.train_data is None:
        raise RuntimeError(
            "find_lr needs an optimizer (set_optimizer), a loss function (set_loss_fn) and "
            "training data (set_train_loader)."
        )
    kwargs = module_arguments(setup, RunState(), runtime)
    kwargs.update(scheduler=None, checkpoint_keys=None)  # the search's own scheduler steps
    module = HandlerModule(**kwargs)
    train, _ = loaders(setup, False)
    accelerator, devices = accelerator_for(runtime.device)
    rng = capture_rng()
    try:
        with tempfile.TemporaryDirectory() as root, quiet_lightning():
            trainer = L.Trainer(
                accelerator=accelerator,
                devices=devices,
                default_root_dir=root,
                max_epochs=-1,  # the search stops after num_training steps
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                num_sanity_val_steps=0,
            )
            found = Tuner(trainer).lr_find(
                module,
                train_dataloaders=train,
                min_lr=min_lr,
                max_lr=max_lr,
                num_training=num_training,
                mode=mode,
                early_stop_threshold=early_stop_threshold,
                update_attr=False,
            )
    finally:
        restore_rng(rng)
        runtime.module.to(runtime.device).train()
        for kept in setup.eval_modules:
            kept.eval()
    suggestion = found.suggestion() if found is not None else None
    if apply and suggestion is not None:
        scale_learning_rate(runtime.optimizer, runtime.scheduler, float(suggestion))
    results = found.results if found is not None else {"lr": [], "loss": []}
    return LRFinderResult(
        suggestion=None if suggestion is None else float(suggestion),
        lrs=[float(v) for v in results["lr"]],
        losses=[float(v) for v in results["loss"]],
        applied=bool(apply and suggestion is not None),
    )
