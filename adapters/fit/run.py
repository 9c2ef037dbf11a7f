"""One ``NNHandler.train()`` call: checks, then a generated module fitted by a Lightning Trainer.

Everything here is a function of the handler's three parts — the setup (what to train), the run
state (what training produced so far) and the runtime (the live objects) — never of the facade.
The callbacks and their order come from :mod:`.callbacks`; the module's arguments and the loaders
from :mod:`.inputs`.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from ..._state.run_state import RunState
from ..._state.runtime import Runtime
from ..._state.setup import Setup
from ..._state.train_options import TrainOptions, check_positive_int
from ..hooks.callback_bridge import lightning_loggers
from ..steps.steps_per_execution import build_fit_module, resolve_steps_per_execution
from .callbacks import has_checkpointing, train_callbacks
from .inputs import apply_loader_rng, module_arguments, quiet_lightning
from .interrupts import plain_python_signals
from .launchers import fit_arguments
from .strategy import strategy_arguments
from .trainer_factory import (
    TrainPlan,
    check_trainer_kwargs,
    continue_from,
    manual_steps,
    trainer_arguments,
)

__all__ = ["check_ready", "run"]


def check_ready(setup: Setup, runtime: Runtime, epochs: Any, options: TrainOptions) -> None:
    """Raise before anything changes when ``train(epochs, ...)`` cannot run.

    Raises:
        RuntimeError: naming every missing piece of the setup.
        ValueError, TypeError: bad ``epochs`` or ``trainer_kwargs``.
    """
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


def run(setup: Setup, state: RunState, runtime: Runtime, epochs: int) -> None:
    """Run ``epochs`` more epochs of training (``check_ready`` has passed)."""
    options = setup.training
    state.ensure_ema(runtime.module, options.ema_decay, runtime.device)
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
    callbacks = train_callbacks(setup, state, runtime, plan, options.save_on_last_epoch)
    trainer_kwargs = dict(options.trainer_kwargs)
    args = trainer_arguments(
        plan,
        runtime.device,
        callbacks,
        loggers=lightning_loggers(list(setup.callbacks), setup.auto_save.save_path),
        has_checkpointing=has_checkpointing(callbacks),
        root_dir=setup.auto_save.save_path,
        scaler=state.ensure_grad_scaler(runtime.device, options.use_amp),
    )
    args.update(strategy_arguments(runtime.dist, runtime.device, setup.ddp_kwargs))
    if runtime.datamodule is not None and not validate:
        args["limit_val_batches"] = 0  # validate_every=0: the data module's val loader unused
    args.update(trainer_kwargs)
    steps = manual_steps(args)
    state.clear_stop()
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
            state.record_global_step(trainer.global_step)
            # Lightning's teardown moves the model to the CPU; the handler's device is the
            # contract. Train mode again, the modules kept in eval mode excepted.
            runtime.module.to(runtime.device).train()
            for kept in setup.eval_modules:
                kept.eval()
            if state.ema is not None:
                state.ema.to(runtime.device)
