"""``train()`` under each of Lightning's launchers: the place of each process, and what comes back.

Lightning starts the processes of a multi-process ``Trainer`` in one of three ways:

- none: the processes exist already (one process; torchrun; SLURM) and train in place;
- ``_SubprocessScriptLauncher`` (``devices=N`` without a strategy, ``strategy="ddp"``): the
  script is run again for ranks 1..N-1 and the main process trains as rank 0;
- ``_MultiProcessingLauncher`` (``ddp_spawn``, ``ddp_fork``, ``ddp_notebook``): N worker
  processes train while the main process waits. Lightning copies the weights back; everything
  else a run changes would stay in the workers.

For the last, :class:`WorkerResultsLauncher` replaces Lightning's launcher on the strategy and
uses its own channel (``get_extra_results`` → ``update_main_process_results``) to send rank 0's
run state (history, step counter, EMA, auto-saver bookkeeping), optimizer and scheduler states and
every callback's ``state_dict()`` to the main process, which loads them into its own objects.
The workers shard the data as under torchrun (:class:`WorkerData`). In every process Lightning
started, ``ProcessPlace`` (``adapters/hooks/process_place.py``) gives the handler facade its rank,
world size and device.
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Callable
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.strategies.launchers import (
    _MultiProcessingLauncher,
    _SubprocessScriptLauncher,
)

from ..._env.dist_loaders import shard_train_loader, shard_val_loader
from ..._state.data import require_batches, shuffle_seed
from ..._state.run_state import RunState
from ..._state.runtime import Runtime
from ..._state.setup import Setup
from ...callbacks.base import Callback as NativeCallback
from .callbacks import place_process_first
from .inputs import loaders, quiet_lightning
from .trainer_factory import continue_from

__all__ = [
    "WorkerData",
    "WorkerResultsLauncher",
    "fit_arguments",
    "process_loaders",
    "stateless_callbacks",
    "worker_data",
]

_KEY = "nn_handler"
# Packages whose callbacks without ``state_dict`` keep nothing a run needs afterwards (their
# effect is files, prints or a logger's records).
_OWN_PACKAGES = ("nn_handler.", "lightning.", "pytorch_lightning.")

_UNMARKED_STEP = r"Seems like `optimizer.step\(\)` has been overridden after learning rate"


def fit_arguments(
    trainer: L.Trainer, setup: Setup, state: RunState, runtime: Runtime, validate: bool
) -> dict[str, Any]:
    """Adapt ``trainer`` to the launcher Lightning chose; the data arguments of ``fit``.

    Nothing trains here: every refusal comes before the first step.

    Raises:
        RuntimeError: a launcher whose workers' results cannot come back.
        ValueError: the training loader yields no batch.
    """
    make_loaders = functools.partial(process_loaders, setup, runtime, validate)
    launcher = trainer.strategy.launcher
    # Lightning starts (or started) this job's processes: each learns its rank at setup.
    placed = trainer.world_size > 1 and not runtime.dist.distributed
    if placed:
        # First, so that every other callback's setup sees the rank.
        place_process_first(trainer, state, runtime)
    if runtime.datamodule is not None:
        # Lightning calls its prepare_data/setup("fit") and shards its loaders in each process.
        train = val = None
        data = {"datamodule": runtime.datamodule}
    else:
        train, val = make_loaders()
        require_batches(train, "train")
        # Where the rank is known only at setup, each process makes its loaders (its shard)
        # then.
        data = {"datamodule": worker_data(make_loaders, val is not None)} if placed else {}
    if launcher is None or isinstance(launcher, _SubprocessScriptLauncher):
        return data or {"train_dataloaders": train, "val_dataloaders": val}
    strategy = setup.training.trainer_kwargs.get("strategy", type(trainer.strategy).__name__)
    if type(launcher) is not _MultiProcessingLauncher:
        raise RuntimeError(
            f"train() cannot run with strategy {strategy!r}: its launcher "
            f"({type(launcher).__name__}) starts processes whose history, step counter, EMA, "
            "optimizer and callback states would not come back to this handler. Launch the "
            "script with torchrun (or use strategy='ddp_spawn' / 'ddp_notebook'), or train "
            "handler.to_lightning_module() with your own Trainer."
        )
    for callback in stateless_callbacks(setup.callbacks):
        warnings.warn(
            f"Callback {type(callback).__name__} has no state_dict(): with strategy "
            f"{strategy!r} it runs in the worker processes, and what it records there does not "
            "come back to this process (the history, step counter, EMA, optimizer, scheduler "
            "and each callback's state_dict() do). Give it state_dict()/load_state_dict(), or "
            "launch with torchrun.",
            UserWarning,
            stacklevel=4,  # the user's train() call
        )
    trainer.strategy._launcher = WorkerResultsLauncher(
        trainer.strategy, launcher._start_method, setup.callbacks, state, runtime
    )
    return data or {"train_dataloaders": train, "val_dataloaders": val}


def process_loaders(setup: Setup, runtime: Runtime, validate: bool) -> tuple[Any, Any]:
    """``train()``'s ``(train, val)`` loaders in this process.

    The handler shards its loaders when they are set under torchrun or SLURM; a process that
    Lightning started learns its rank only at setup, and shards them then.
    """
    train, val = loaders(setup, validate, runtime.dist.distributed)
    dist = runtime.dist
    if dist.source == "lightning":
        train, _ = shard_train_loader(train, dist, shuffle_seed(setup.seed))
        val = shard_val_loader(val, dist) if val is not None else None
    return train, val


def stateless_callbacks(callbacks: Any) -> list[Any]:
    """The user's callbacks (native or Lightning) that cannot send their state back."""
    out = []
    for callback in callbacks:
        base = NativeCallback if isinstance(callback, NativeCallback) else L.Callback
        if type(callback).__module__.startswith(_OWN_PACKAGES):
            continue
        if type(callback).state_dict is base.state_dict:
            out.append(callback)
    return out


class WorkerData(L.LightningDataModule):
    """The training loader of ``train()``, made in each process once it knows its rank.

    Use :func:`worker_data`, which adds the validation loader when there is one.
    """

    def __init__(self, make_loaders: Callable[[], tuple[Any, Any]]):
        super().__init__()
        self.make_loaders = make_loaders

    def train_dataloader(self) -> Any:
        return self.make_loaders()[0]


class _WorkerDataWithVal(WorkerData):
    # A separate class: Lightning validates when ``val_dataloader`` is overridden, and warns
    # about an empty one.
    def val_dataloader(self) -> Any:
        return self.make_loaders()[1]


def worker_data(make_loaders: Callable[[], tuple[Any, Any]], validate: bool) -> WorkerData:
    """A :class:`WorkerData` serving ``make_loaders()`` (with validation if ``validate``)."""
    return (_WorkerDataWithVal if validate else WorkerData)(make_loaders)


class WorkerResultsLauncher(_MultiProcessingLauncher):
    """Lightning's spawn/fork launcher, sending back what rank 0's run changed.

    Rank 0 sends its run state (:meth:`RunState.worker_state`), the optimizer's and scheduler's
    ``state_dict()`` and each callback's ``state_dict()`` with Lightning's own worker output; the
    main process loads them into its objects and continues its Trainer's counters from them.

    Args:
        strategy: the strategy this launcher starts processes for.
        start_method: ``"spawn"``, ``"fork"`` or ``"forkserver"``.
        callbacks: the handler's callbacks (native and Lightning), in the setup's order.
        state: the handler's run state.
        runtime: the handler's runtime (optimizer, scheduler).
    """

    def __init__(
        self,
        strategy: Any,
        start_method: Literal["spawn", "fork", "forkserver"],
        callbacks: Any,
        state: RunState,
        runtime: Runtime,
    ):
        super().__init__(strategy, start_method=start_method)
        self.callbacks = list(callbacks)
        self.state = state
        self.runtime = runtime

    def _wrapping_function(self, *args: Any, **kwargs: Any) -> None:
        # Runs first in each worker.
        if self._start_method != "fork" and isinstance(self._strategy.accelerator, CPUAccelerator):
            # Pickling for a new process put the CPU tensors in memory shared by all workers;
            # Lightning unshares the model's, and every rank must own its EMA and optimizer state.
            self._unshare()
        # A spawned worker has none of the main process's logger levels and warning filters.
        with quiet_lightning():
            if self._start_method != "fork":
                # torch's schedulers mark optimizer.step with a wrapper that pickling drops, and
                # then warn at their first step although the optimizer did step first.
                warnings.filterwarnings("ignore", message=_UNMARKED_STEP)
            super()._wrapping_function(*args, **kwargs)

    def _unshare(self) -> None:
        ema = self.state.ema
        if ema is not None:
            with torch.no_grad():
                for tensor in [*ema.parameters(), *ema.buffers()]:
                    tensor.data = tensor.data.clone()
        optimizer = self.runtime.optimizer
        if optimizer is not None:
            for slot in optimizer.state.values():
                for key, value in slot.items():
                    if isinstance(value, torch.Tensor):
                        slot[key] = value.clone()

    def get_extra_results(self, trainer: L.Trainer) -> dict[str, Any]:
        extra = super().get_extra_results(trainer)
        optimizer, scheduler = self.runtime.optimizer, self.runtime.scheduler
        self.state.record_global_step(trainer.global_step)  # as train() records after a fit
        results = {
            "run_state": self.state.worker_state(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "callbacks": [callback.state_dict() for callback in self.callbacks],
        }
        buffer = io.BytesIO()
        torch.save(results, buffer)  # bytes, as Lightning sends its own: no shared memory
        extra[_KEY] = buffer.getvalue()
        return extra

    def update_main_process_results(self, trainer: L.Trainer, extra: dict[str, Any]) -> None:
        super().update_main_process_results(trainer, extra)
        # Written by this launcher in our own worker, read once, never from a file.
        results = torch.load(io.BytesIO(extra[_KEY]), map_location="cpu", weights_only=False)
        self.state.load_worker_state(results["run_state"])
        if results["optimizer"] is not None:
            assert self.runtime.optimizer is not None  # the worker had this one
            self.runtime.optimizer.load_state_dict(results["optimizer"])
        if results["scheduler"] is not None:
            self.runtime.scheduler.load_state_dict(results["scheduler"])
        for callback, callback_state in zip(self.callbacks, results["callbacks"]):
            callback.load_state_dict(callback_state)
        # This Trainer never ran a loop: make its counters say what the workers did, so that
        # whoever reads trainer.global_step after fit (train() does) sees the workers' steps.
        continue_from(trainer, self.state.epochs_done, self.state.global_step)
