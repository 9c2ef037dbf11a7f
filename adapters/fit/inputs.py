"""What one fit is made of, from the handler's three parts: the module's arguments, the loaders,
the checkpoint builder; and Lightning kept quiet while it runs.

Shared by ``train()`` (:mod:`.run`), the launchers' worker processes, the exported module and the
learning-rate finder, so each reads the setup the same way.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

from ..._state.data import stateful_loader, use_shuffle_seed
from ..._state.run_state import RunState
from ..._state.runtime import Runtime
from ..._state.setup import Setup
from ...checkpoint import handler_checkpoint
from ...checkpoint._rng import set_generator_state
from ..steps.module import HandlerModule

__all__ = [
    "apply_loader_rng",
    "build_module",
    "checkpoint_builder",
    "loaders",
    "module_arguments",
    "quiet_lightning",
]

# Lightning's start-up banners ("GPU available: ...") and tips, which the original never printed.
_QUIET_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
    "lightning.fabric.utilities.seed",
    # Processes Lightning starts log joining the process group (torchrun's jobs never show it).
    "lightning.fabric.utilities.distributed",
    "lightning.fabric.utilities.rank_zero",
)
_QUIET_WARNINGS = (
    r".*does not have many workers.*",
    r".*You defined a `validation_step` but have no `val_dataloader`.*",
    r".*number of training batches.*is smaller than the logging interval.*",
    r".*`training_step` returned `None`.*",
    r".*isinstance\(treespec, LeafSpec\).*",
    r".*module\(s\) in eval mode at the start of training.*",  # keep_eval_on_module
    r".*The `srun` command is available on your system but is not used.*",
    # Epoch values are reduced across ranks before they are logged: no sync_dist needed.
    r".*when logging on epoch level in distributed setting.*",
    # Chunked steps (adapters/steps/chunked_module.py) take the `dataloader_iter` step form on
    # purpose.
    r".*`dataloader_iter`.*",
    # torchdata's StatefulDataLoader (mid-epoch auto-saves) calls a deprecated torch function.
    r".*'set_vital' is deprecated.*",
)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's informational banners and tips for the duration of a run."""
    saved = []
    for name in _QUIET_LOGGERS:
        log = logging.getLogger(name)
        saved.append((log, log.level))
        log.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for pattern in _QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            yield
        finally:
            for log, level in saved:
                log.setLevel(level)


def module_arguments(
    setup: Setup, state: RunState, runtime: Runtime, debug_print_interval: int | None = None
) -> dict[str, Any]:
    """``HandlerModule`` keyword arguments for this setup."""
    return dict(
        model=runtime.model,
        model_type=setup.model_type,
        loss=setup.loss,
        metrics=dict(setup.metrics),
        optimizer=runtime.optimizer,
        scheduler=runtime.scheduler,
        sde=runtime.sde,
        run_state=state,
        eval_modules=list(setup.eval_modules),
        debug_print_interval=debug_print_interval,
        logger=runtime.logger,
        checkpoint_keys=checkpoint_builder(setup, state, runtime),
    )


def build_module(setup: Setup, state: RunState, runtime: Runtime) -> HandlerModule:
    """The generated LightningModule for this setup."""
    return HandlerModule(
        **module_arguments(setup, state, runtime, setup.training.debug_print_interval)
    )


def checkpoint_builder(
    setup: Setup, state: RunState, runtime: Runtime
) -> Callable[[Any], dict[str, Any]]:
    """``trainer -> handler checkpoint entries``, for savers that run inside a fit (picklable,
    for spawned workers)."""
    return functools.partial(handler_checkpoint, setup, state, runtime)


def loaders(setup: Setup, validate: bool, distributed: bool = False) -> tuple[Any, Any]:
    """The loaders to fit on: the handler's own (under DDP, sharded when they were set).

    When checkpoints are written inside epochs (auto-saves every N steps, a ``ModelCheckpoint``
    by steps or time) the training data is read through a stateful loader (see
    :func:`~nn_handler._state.data.stateful_loader`), so that those files resume inside the epoch.
    """
    if setup.train_data is None:
        raise RuntimeError("The handler has no training data: call set_train_loader(...) first.")
    train = setup.train_data.loader
    if _saves_inside_epochs(setup):
        train = stateful_loader(setup.train_data, distributed)
    use_shuffle_seed(setup.train_data, setup.seed)  # the seed may be set after set_train_loader
    return train, setup.val_data.loader if validate and setup.val_data is not None else None


def _saves_inside_epochs(setup: Setup) -> bool:
    if setup.auto_save.every_n_train_steps:
        return True
    return any(
        isinstance(c, ModelCheckpoint)
        and (c._every_n_train_steps or c._train_time_interval is not None)
        for c in setup.callbacks
    )


def apply_loader_rng(setup: Setup, state: RunState) -> None:
    """After ``NNHandler.load``: loaders with their own generator continue its saved state."""
    pending = state.take_loader_rng()
    if not pending:
        return
    for role, slot in (("train", setup.train_data), ("val", setup.val_data)):
        if slot is not None and slot.loader is not None:
            set_generator_state(slot.loader, pending.get(role))
