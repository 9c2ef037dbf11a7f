"""One ``NNHandler.train()`` call: checks, then a generated module fitted by a Lightning Trainer.

Everything here is a function of the handler's three parts — the setup (what to train), the run
state (what training produced so far) and the runtime (the live objects) — never of the facade.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from ..._env.dist_env import DistEnv
from ..._state.run_state import RunState
from ..._state.runtime import Runtime
from ..._state.setup import Setup, TrainOptions, check_positive_int

if TYPE_CHECKING:
    from ..steps.module import HandlerModule

__all__ = [
    "apply_loader_rng",
    "build_module",
    "check_ready",
    "device_for_rank",
    "ensure_ema",
    "init_process_group",
    "lightning_callbacks",
    "loaders",
    "module_arguments",
    "run",
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


def device_for_rank(device: torch.device, dist: DistEnv) -> torch.device:
    """Under DDP each process uses its local GPU (or the CPU)."""
    if dist.distributed and device.type == "cuda":
        return torch.device("cuda", dist.local_rank)
    return device


def init_process_group(dist: DistEnv, device: torch.device) -> None:
    """Create the process group at construction so ``_rank`` etc. are usable at once."""
    from .strategy import ensure_process_group

    ensure_process_group(dist, device)


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


def check_ready(setup: Setup, runtime: Runtime, epochs: Any, options: TrainOptions) -> None:
    """Raise before anything changes when ``train(epochs, ...)`` cannot run.

    Raises:
        RuntimeError: naming every missing piece of the setup.
        ValueError, TypeError: bad ``epochs`` or ``trainer_kwargs``.
    """
    from .trainer_factory import check_trainer_kwargs

    missing = []
    if runtime.optimizer is None:
        missing.append("optimizer (set_optimizer)")
    if setup.loss is None:
        missing.append("loss function (set_loss_fn)")
    if setup.train_data is None and runtime.datamodule is None:
        missing.append("training data (set_train_loader or set_datamodule)")
    if missing:
        raise RuntimeError("Cannot train: missing " + ", ".join(missing) + ".")
    if setup.model_type.value == "score_based" and runtime.sde is None:
        raise RuntimeError("Cannot train a SCORE_BASED model without an SDE: call set_sde(...).")
    check_positive_int("epochs", epochs)
    check_trainer_kwargs(options.trainer_kwargs)


def ensure_ema(state: RunState, module: torch.nn.Module, decay: float, device: Any) -> None:
    """Create (or keep) the exponential moving average of ``module``'s weights."""
    if decay == 0.0:
        if state.ema is not None:
            state.ema.to(device)
        return
    if state.ema is None or state.ema_decay != decay:
        from ..._ops.ema import ExponentialMovingAverage

        state.ema = ExponentialMovingAverage(module, decay)
        state.ema_decay = float(decay)
    state.ema.to(device)


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
    from ..steps.module import HandlerModule

    return HandlerModule(
        **module_arguments(setup, state, runtime, setup.training.debug_print_interval)
    )


def checkpoint_builder(
    setup: Setup, state: RunState, runtime: Runtime
) -> Callable[[Any], dict[str, Any]]:
    """``trainer -> handler checkpoint entries``, for savers that run inside a fit (picklable,
    for spawned workers)."""
    from ...checkpoint import handler_checkpoint

    return functools.partial(handler_checkpoint, setup, state, runtime)


def lightning_callbacks(
    setup: Setup, state: RunState, runtime: Runtime, save_on_last_epoch: bool
) -> list[Any]:
    """Epoch logs (and their log line) first, then native callbacks, then Lightning callbacks,
    then the AutoSaver."""
    from ...callbacks.base import Callback
    from ..hooks.callback_bridge import NativeCallbackBridge
    from ..hooks.epoch_log_line import EpochLogLine, logs_at_info
    from ..hooks.epoch_logs import EpochLogs

    native = [c for c in setup.callbacks if isinstance(c, Callback)]
    others = [c for c in setup.callbacks if not isinstance(c, Callback)]
    callbacks: list[Any] = [EpochLogs()]
    if logs_at_info(runtime.logger):
        callbacks.append(EpochLogLine(runtime.logger))
    if native:
        # Lightning dispatches every hook to every callback (6 per training step), so a bridge
        # with nothing to call would cost per-step time for nothing.
        callbacks.append(NativeCallbackBridge(native, runtime.logger, state))
    callbacks += others
    if runtime.dist.world_size > 1:
        from .interrupts import LeaveAloneOnSigterm

        callbacks.append(LeaveAloneOnSigterm(runtime.dist.rank))
    if setup.auto_save.enabled:
        from ..hooks.autosaver import AutoSaver

        callbacks.append(
            AutoSaver(
                setup.auto_save,
                state.saver,
                checkpoint_builder(setup, state, runtime),
                runtime.logger,
                save_on_last_epoch=save_on_last_epoch,
            )
        )
    return callbacks


def run(setup: Setup, state: RunState, runtime: Runtime, epochs: int) -> None:
    """Run ``epochs`` more epochs of training (``check_ready`` has passed)."""
    import lightning as L

    from ..hooks.callback_bridge import lightning_loggers
    from ..steps.steps_per_execution import build_fit_module, resolve_steps_per_execution
    from .interrupts import plain_python_signals
    from .launchers import fit_arguments
    from .strategy import strategy_arguments
    from .trainer_factory import TrainPlan, continue_from, manual_steps, trainer_arguments

    options = setup.training
    ensure_ema(state, runtime.module, options.ema_decay, runtime.device)
    apply_loader_rng(setup, state)
    has_val = setup.val_data is not None or runtime.datamodule is not None
    validate = options.validate_every > 0 and has_val
    bars = runtime.dist.rank == 0 and bool(options.trainer_kwargs.get("enable_progress_bar", True))
    plan = TrainPlan(
        epochs=epochs,
        start_epoch=state.epochs_done,
        validate_every=options.validate_every,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        gradient_clipping_norm=options.gradient_clipping_norm,
        use_amp=options.use_amp,
        progress_bar=options.progress_bar and bars,
        epoch_train_and_val_pbar=options.epoch_train_and_val_pbar and bars,
    )
    callbacks = lightning_callbacks(setup, state, runtime, options.save_on_last_epoch)
    trainer_kwargs = dict(options.trainer_kwargs)
    args = trainer_arguments(
        plan,
        runtime.device,
        callbacks,
        loggers=lightning_loggers(list(setup.callbacks), setup.auto_save.save_path),
        has_checkpointing=any(_is_checkpoint(c) for c in callbacks),
        root_dir=setup.auto_save.save_path,
        scaler=grad_scaler(state, runtime.device, options.use_amp),
    )
    args.update(strategy_arguments(runtime.dist, runtime.device, setup.ddp_kwargs))
    if runtime.datamodule is not None and not validate:
        args["limit_val_batches"] = 0  # validate_every=0: the data module's val loader unused
    args.update(trainer_kwargs)
    steps = manual_steps(args)
    state.stop_requested = False
    resume = state.take_resume_point()
    with quiet_lightning():
        trainer = L.Trainer(**args)
        if resume is not None:
            # A file written inside an epoch: Lightning's own loop state (batches done, the
            # loader's position) continues that epoch.
            trainer.fit_loop.load_state_dict(resume["fit_loop"])
        else:
            continue_from(trainer, plan.start_epoch, state.global_step)
        data = fit_arguments(trainer, setup, state, runtime, validate)
        batches = resolve_steps_per_execution(
            options.steps_per_execution, trainer, data.get("train_dataloaders"), trainer_kwargs
        )
        module_kwargs = module_arguments(setup, state, runtime, options.debug_print_interval)
        module = build_fit_module(module_kwargs, steps, batches)
        if resume is not None:
            module.resume_epoch(resume["train_stats"])
        try:
            with plain_python_signals(trainer):
                trainer.fit(module, **data)
        finally:  # also after an interrupt: the step counter must match the optimizer's steps
            state.global_step = int(trainer.global_step)
            # Lightning's teardown moves the model to the CPU; the handler's device is the
            # contract. Train mode again, the modules kept in eval mode excepted.
            runtime.module.to(runtime.device).train()
            for kept in setup.eval_modules:
                kept.eval()
            if state.ema is not None:
                state.ema.to(runtime.device)


def loaders(setup: Setup, validate: bool, distributed: bool = False) -> tuple:
    """The loaders to fit on: the handler's own (under DDP, sharded when they were set).

    When checkpoints are written inside epochs (auto-saves every N steps, a ``ModelCheckpoint``
    by steps or time) the training data is read through a stateful loader (see
    :func:`~nn_handler._state.data.stateful_loader`), so that those files resume inside the epoch.
    """
    from ..._state.data import stateful_loader, use_shuffle_seed

    assert setup.train_data is not None  # every caller checks it first
    train = setup.train_data.loader
    if _saves_inside_epochs(setup):
        train = stateful_loader(setup.train_data, distributed)
    use_shuffle_seed(train, setup.seed)  # the seed may have been set after set_train_loader
    return train, setup.val_data.loader if validate and setup.val_data is not None else None


def _saves_inside_epochs(setup: Setup) -> bool:
    if setup.auto_save.every_n_train_steps:
        return True
    from lightning.pytorch.callbacks import ModelCheckpoint

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
    from ...checkpoint._rng import set_generator_state

    for role, slot in (("train", setup.train_data), ("val", setup.val_data)):
        if slot is not None and slot.loader is not None:
            set_generator_state(slot.loader, pending.get(role))


def grad_scaler(state: RunState, device: torch.device, use_amp: bool) -> Any:
    """The handler's own GradScaler, kept across ``train`` calls (CUDA AMP only)."""
    if not (use_amp and device.type == "cuda"):
        return None
    if state.grad_scaler is None:
        state.grad_scaler = torch.amp.GradScaler("cuda")
    return state.grad_scaler


def _is_checkpoint(callback: Any) -> bool:
    from lightning.pytorch.callbacks import Checkpoint

    return isinstance(callback, Checkpoint)
