"""``NNHandler``: the drop-in facade that keeps a training setup and runs it on Lightning.

The facade holds three objects and nothing else: the :class:`Setup` (what the
user configured), the :class:`RunState` (what training produced) and the
:class:`Runtime` (the live objects built from the setup). Setters validate
and write into the setup; properties read from the three. Training, checkpoints, export and
generative operations are functions of the three parts (see docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import torch
from torch import nn

from ._codecs.model_code import model_code
from ._engine import engine
from ._env.devices import device_for_rank, resolve_device
from ._env.dist_env import detect_distributed
from ._env.loggers import make_logger, release_logger
from ._env.process_group import ensure_process_group
from ._env.seeding import seed_everything
from ._ops import inference as _inference
from ._ops import plotting as _plotting
from ._state.autosave import AutoSaveSettings, check_interval, check_name, check_save_path
from ._state.component import Component
from ._state.data import make_slot
from ._state.loss import LossSpec
from ._state.metrics import check_metric
from ._state.run_state import RunState
from ._state.runtime import Runtime, build_model, build_optimizer, build_scheduler
from ._state.setup import Setup
from ._state.train_options import TrainOptions
from .callbacks.base import Callback
from .checkpoint import _restore as _checkpoint_read
from .checkpoint import _save as _checkpoint_write
from .enums import DataLoaderType, LoggingMode, ModelType
from .generative import handler_ops as _generative

if TYPE_CHECKING:
    import lightning as L
    from torch.utils.data import DataLoader

    from .adapters.export import ExportedHandlerModule
    from .adapters.fit.lr_finder import LRFinderResult

__all__ = ["NNHandler"]

_SCHEDULER_BASES: tuple[type, ...] = (
    torch.optim.lr_scheduler.LRScheduler,
    torch.optim.lr_scheduler.ReduceLROnPlateau,
)


def _is_lightning_callback(obj: Any) -> bool:
    from lightning.pytorch.callbacks import Callback as LightningCallback

    return isinstance(obj, LightningCallback)


def _is_datamodule(obj: Any) -> bool:
    import lightning as L

    return isinstance(obj, L.LightningDataModule)


def _model_component(model_class: Any, model_kwargs: dict[str, Any]) -> Component:
    if not (inspect.isclass(model_class) and issubclass(model_class, nn.Module)):
        raise TypeError(
            "model_class must be an nn.Module subclass (the class, not an instance), got "
            f"{model_class!r}."
        )
    if "model_kwargs" in model_kwargs:
        nested = model_kwargs.pop("model_kwargs")
        if not isinstance(nested, dict):
            raise TypeError(f"model_kwargs must be a dict, got {type(nested).__name__}.")
        model_kwargs = {**nested, **model_kwargs}
    return Component(model_class, model_kwargs)


def _checked_ddp_kwargs(ddp_kwargs: Any) -> dict[str, Any]:
    if not isinstance(ddp_kwargs, dict):
        raise TypeError(f"ddp_kwargs must be a dict or None, got {type(ddp_kwargs).__name__}.")
    return dict(ddp_kwargs)


class NNHandler:
    """Keeps a model, its training configuration and its history; ``train()`` runs on Lightning.

    Args:
        model_class: an ``nn.Module`` subclass, instantiated with the model kwargs.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``. CUDA on a machine
            without it falls back to the CPU with a warning. Under DDP the device is chosen per
            rank.
        logger_mode: :class:`LoggingMode` (or its name) or ``None`` for no log records.
        logger_filename, logger_filemode, logger_level: the log file and level.
        save_model_code: keep the model class's source text in checkpoints (see
            docs/checkpointing.md for the one opt-in that executes it).
        model_type: :class:`ModelType` or its case-insensitive name.
        use_distributed: ``True`` require DDP, ``False`` never, ``None`` detect.
        ddp_kwargs: options for the DDP strategy (e.g. ``find_unused_parameters``).
        **model_kwargs: the model's constructor arguments (or ``model_kwargs={...}``).
    """

    # TypeAlias: in the annotations below these names are the enums, not variables.
    ModelType: TypeAlias = ModelType
    LoggingMode: TypeAlias = LoggingMode

    def __init__(
        self,
        model_class: type[nn.Module],
        device: str | torch.device = "cpu",
        logger_mode: LoggingMode | str | None = None,
        logger_filename: str = "NNHandler.log",
        logger_filemode: str = "a",
        logger_level: int = logging.INFO,
        save_model_code: bool = False,
        model_type: ModelType | str = ModelType.CLASSIFICATION,
        use_distributed: bool | None = None,
        ddp_kwargs: dict[str, Any] | None = None,
        **model_kwargs: Any,
    ):
        ddp_kwargs = _checked_ddp_kwargs({} if ddp_kwargs is None else ddp_kwargs)
        model = _model_component(model_class, model_kwargs)
        dist = detect_distributed(use_distributed)
        resolved = device_for_rank(resolve_device(device), dist)
        logger = make_logger(logger_mode, logger_filename, logger_filemode, logger_level, dist.rank)
        weakref.finalize(self, release_logger, logger)  # the log file closes with the handler
        self._runtime = Runtime(dist, resolved, logger, build_model(model, resolved))
        self._state = RunState()
        self._setup = Setup(
            model=model,
            model_type=ModelType.parse(model_type),
            save_model_code=bool(save_model_code),
            model_code=_source_of(model_class) if save_model_code else None,
            ddp_kwargs=ddp_kwargs,
            device=str(device),
        )
        if dist.distributed:
            # At construction, so that ``_rank`` etc. are usable at once.
            ensure_process_group(dist, resolved)
        logger.info(
            "NNHandler ready: %s on %s (%s).", model.name, resolved, self._setup.model_type.value
        )

    @classmethod
    def from_setup(cls, setup: Setup, **handler_kwargs: Any) -> NNHandler:
        """A handler built from a :class:`Setup` (a checkpoint, a config).

        ``handler_kwargs`` are the constructor's process settings (``device``,
        ``use_distributed``, ``logger_mode``, ...). Nothing is trained or seeded.
        """
        handler_kwargs.setdefault("device", setup.device)
        handler = cls(
            setup.model.target,
            model_type=setup.model_type,
            save_model_code=setup.save_model_code,
            ddp_kwargs=dict(setup.ddp_kwargs),
            model_kwargs=dict(setup.model.kwargs),
            **handler_kwargs,
        )
        handler._adopt(setup)
        return handler

    def _adopt(self, setup: Setup) -> None:
        """Build everything ``setup`` describes beyond the model (see :meth:`from_setup`)."""
        if setup.optimizer is not None:
            self._set_optimizer(setup.optimizer)
            if setup.scheduler is not None:
                self._set_scheduler(setup.scheduler)
        if setup.sde is not None:
            self._runtime.sde = _generative.build_sde_checked(setup.sde)
            self._setup = self._setup.replace(sde=setup.sde)
        if setup.sampler is not None:
            self._runtime.sampler = _generative.build_sampler_checked(setup.sampler, self.module)
            self._setup = self._setup.replace(sampler=setup.sampler)
        for callback in setup.callbacks:
            self.add_callback(callback)
        self._setup = self._setup.replace(
            model_code=setup.model_code or self._setup.model_code,
            loss=setup.loss,
            metrics=dict(setup.metrics),
            auto_save=setup.auto_save,
            seed=setup.seed,
            training=setup.training,
            train_data=setup.train_data,
            val_data=setup.val_data,
        )

    # --------------------------------------------------------------- parts
    @property
    def setup(self) -> Setup:
        """What was configured (a frozen value; change it through the setters)."""
        return self._setup

    @property
    def run_state(self) -> RunState:
        """What training produced: history, step counter, EMA, auto-saver bookkeeping."""
        return self._state

    @property
    def runtime(self) -> Runtime:
        """The live objects built from the setup (model, optimizer, device, logger, ...)."""
        return self._runtime

    # ------------------------------------------------------------------ model
    def set_model(
        self,
        model_class: type[nn.Module],
        save_model_code: bool = False,
        model_type: ModelType | str | None = None,
        ddp_kwargs: dict[str, Any] | None = None,
        **model_kwargs: Any,
    ) -> None:
        """Replace the model; an optimizer already set is rebuilt with the same class and kwargs."""
        model = _model_component(model_class, model_kwargs)
        kind = self._setup.model_type if model_type is None else ModelType.parse(model_type)
        ddp = self._setup.ddp_kwargs if ddp_kwargs is None else _checked_ddp_kwargs(ddp_kwargs)
        module = build_model(model, self._runtime.device)
        self._runtime.module, self._runtime.compiled = module, None
        self._state.drop_ema()
        self._setup = self._setup.replace(
            model=model,
            model_type=kind,
            save_model_code=bool(save_model_code),
            model_code=_source_of(model_class) if save_model_code else None,
            ddp_kwargs=ddp,
            eval_modules=(),
            compile_kwargs=None,
        )
        if self._setup.optimizer is not None:
            self._set_optimizer(self._setup.optimizer)
            if self._setup.scheduler is not None:
                self._set_scheduler(self._setup.scheduler)

    @property
    def model(self) -> nn.Module:
        """The model used for training (compiled when ``compile_model`` was called)."""
        return self._runtime.model

    @property
    def module(self) -> nn.Module:
        """The bare ``nn.Module``, never wrapped."""
        return self._runtime.module

    @property
    def model_kwargs(self) -> dict[str, Any]:
        return dict(self._setup.model.kwargs)

    @property
    def model_code(self) -> str | None:
        return self._setup.model_code

    @property
    def model_type(self) -> ModelType:
        return self._setup.model_type

    # --------------------------------------------------------- optimization
    def set_optimizer(self, optimizer_class: type[torch.optim.Optimizer], **kwargs: Any) -> None:
        """Build ``optimizer_class(model.parameters(), **kwargs)``."""
        if not (
            inspect.isclass(optimizer_class) and issubclass(optimizer_class, torch.optim.Optimizer)
        ):
            raise TypeError(
                "optimizer_class must be a torch.optim.Optimizer subclass, got "
                f"{optimizer_class!r}."
            )
        self._set_optimizer(Component(optimizer_class, kwargs))
        if self._setup.scheduler is not None:
            self._set_scheduler(self._setup.scheduler)

    def _set_optimizer(self, component: Component) -> None:
        self._runtime.optimizer = build_optimizer(component, self._runtime.module)
        self._setup = self._setup.replace(optimizer=component)

    def set_scheduler(self, scheduler_class: type | None, **kwargs: Any) -> None:
        """Set an LR scheduler stepped once per epoch (``None`` removes it).

        ``ReduceLROnPlateau`` steps on ``val_loss`` when validation ran, else on ``loss``.
        """
        if scheduler_class is None:
            self._runtime.scheduler = None
            self._setup = self._setup.replace(scheduler=None)
            return
        if not (inspect.isclass(scheduler_class) and issubclass(scheduler_class, _SCHEDULER_BASES)):
            raise TypeError(
                "scheduler_class must be a torch.optim.lr_scheduler class (or None), got "
                f"{scheduler_class!r}."
            )
        if self._runtime.optimizer is None:
            raise RuntimeError(
                "Set an optimizer with set_optimizer(...) before set_scheduler(...)."
            )
        self._set_scheduler(Component(scheduler_class, kwargs))

    def _set_scheduler(self, component: Component) -> None:
        optimizer = self._runtime.optimizer
        assert optimizer is not None  # every caller has built the optimizer first
        self._runtime.scheduler = build_scheduler(component, optimizer)
        self._setup = self._setup.replace(scheduler=component)

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        return self._runtime.optimizer

    @property
    def scheduler(self) -> Any:
        return self._runtime.scheduler

    # ------------------------------------------------------------------ loss
    def set_loss_fn(
        self, loss_fn: Callable[..., Any], pass_epoch_to_loss: bool = False, **kwargs: Any
    ) -> None:
        """Set the loss; ``kwargs`` are passed on every call (``epoch=`` too if asked)."""
        self._setup = self._setup.replace(
            loss=LossSpec(loss_fn, dict(kwargs), bool(pass_epoch_to_loss))
        )

    def _require_loss(self) -> LossSpec:
        if self._setup.loss is None:
            raise RuntimeError("Set a loss with set_loss_fn(...) first.")
        return self._setup.loss

    @property
    def loss_fn(self) -> Callable[..., Any] | None:
        return self._setup.loss.fn if self._setup.loss else None

    @property
    def pass_epoch_to_loss(self) -> bool:
        return bool(self._setup.loss and self._setup.loss.pass_epoch)

    @pass_epoch_to_loss.setter
    def pass_epoch_to_loss(self, value: bool) -> None:
        loss = self._require_loss()
        self._setup = self._setup.replace(loss=LossSpec(loss.fn, loss.kwargs, bool(value)))

    @property
    def loss_fn_kwargs(self) -> dict[str, Any]:
        return dict(self._setup.loss.kwargs) if self._setup.loss else {}

    @loss_fn_kwargs.setter
    def loss_fn_kwargs(self, value: dict[str, Any]) -> None:
        if not isinstance(value, dict):
            raise TypeError(f"loss_fn_kwargs must be a dict, got {type(value).__name__}.")
        loss = self._require_loss()
        self._setup = self._setup.replace(loss=LossSpec(loss.fn, dict(value), loss.pass_epoch))

    # ------------------------------------------------------------------ data
    def set_train_loader(
        self,
        dataset: Any,
        dataloader_type: DataLoaderType | str = DataLoaderType.STANDARD,
        **loader_kwargs: Any,
    ) -> None:
        """Train on ``dataset`` read with ``DataLoader(**loader_kwargs)``; under DDP the loader
        reads this rank's shard (its sampler is a ``DistributedSampler``;
        ``DataLoaderType.RANK_CACHED``: ``dataset`` is already this rank's shard). A
        ``LightningDataModule`` (alone) is :meth:`set_datamodule`'s."""
        if _is_datamodule(dataset) and not loader_kwargs:
            self.set_datamodule(dataset)
            return
        dist, seed = self._runtime.dist, self._setup.seed
        slot = make_slot(dataset, loader_kwargs, "train", dataloader_type, dist, seed)
        self._setup = self._setup.replace(train_data=slot)
        self._runtime.datamodule = None

    def set_datamodule(self, datamodule: Any) -> None:
        """Train and validate on a ``LightningDataModule``'s loaders instead of the handler's.

        ``train`` hands it to the Trainer, which calls its ``prepare_data`` and
        ``setup("fit")`` and reads ``train_dataloader``/``val_dataloader``; its ``state_dict``
        is saved in every checkpoint, and a handler loaded from one gives the saved state to the
        data module of its next ``set_datamodule`` (the object itself is not stored: give it
        again after ``load``). ``set_train_loader(dataset, ...)`` goes back to loaders.
        """
        if not _is_datamodule(datamodule):
            raise TypeError(
                "set_datamodule expects a lightning.LightningDataModule, got "
                f"{type(datamodule).__name__}; use set_train_loader for a Dataset or DataLoader."
            )
        pending = self._state.take_datamodule_state()
        if pending:
            datamodule.load_state_dict(pending)
        self._runtime.datamodule = datamodule
        self._setup = self._setup.replace(train_data=None, val_data=None)

    @property
    def datamodule(self) -> Any:
        """The ``LightningDataModule`` given to :meth:`set_datamodule` (or ``None``)."""
        return self._runtime.datamodule

    def set_val_loader(
        self,
        dataset: Any,
        dataloader_type: DataLoaderType | str = DataLoaderType.STANDARD,
        **loader_kwargs: Any,
    ) -> None:
        """Validate on ``dataset`` read with ``DataLoader(**loader_kwargs)`` (under DDP: this
        rank's share, unshuffled, no sample repeated)."""
        slot = make_slot(dataset, loader_kwargs, "val", dataloader_type, self._runtime.dist)
        self._setup = self._setup.replace(val_data=slot)

    @property
    def train_loader(self) -> DataLoader | None:
        return self._setup.train_data.loader if self._setup.train_data else None

    @property
    def val_loader(self) -> DataLoader | None:
        return self._setup.val_data.loader if self._setup.val_data else None

    @property
    def saved_loader_kwargs(self) -> dict[str, Any]:
        """The loader arguments recorded in the checkpoint this handler was loaded from."""
        return dict(self._state.loaded_loader_kwargs)

    # --------------------------------------------------------------- metrics
    def add_metric(self, name: str, metric_fn: Callable[..., Any]) -> None:
        """Track ``metric_fn(outputs, targets)`` (or a ``torchmetrics.Metric``) under ``name``."""
        check_metric(name, metric_fn)
        self._setup = self._setup.replace(metrics={**self._setup.metrics, name: metric_fn})

    def clear_metrics(self) -> None:
        self._setup = self._setup.replace(metrics={})

    @property
    def metrics(self) -> dict[str, Callable[..., Any]]:
        return dict(self._setup.metrics)

    # ------------------------------------------------------------- callbacks
    def add_callback(self, callback: Any) -> None:
        """Add a native :class:`~nn_handler.callbacks.Callback` or any Lightning callback."""
        if isinstance(callback, Callback):
            callback.set_handler(self)
        elif not _is_lightning_callback(callback):
            raise TypeError(
                "add_callback expects an nn_handler.callbacks.Callback or a "
                f"lightning.pytorch.callbacks.Callback, got {type(callback).__name__}."
            )
        else:
            engine().check_not_a_finder(callback)
        self._setup = self._setup.replace(callbacks=(*self._setup.callbacks, callback))

    def remove_callback(self, callback: Any) -> None:
        callbacks = list(self._setup.callbacks)
        try:
            callbacks.remove(callback)
        except ValueError:
            raise ValueError(
                f"{type(callback).__name__} is not among this handler's callbacks."
            ) from None
        self._setup = self._setup.replace(callbacks=tuple(callbacks))

    def clear_callbacks(self) -> None:
        self._setup = self._setup.replace(callbacks=())

    @property
    def callbacks(self) -> list[Any]:
        return list(self._setup.callbacks)

    # ------------------------------------------------------------ auto-save
    def auto_save(
        self,
        interval: int | None,
        save_path: str = ".",
        name: str = "model_epoch{epoch:02d}",
        overwrite: bool = False,
        every_n_train_steps: int | None = None,
        step_name: str = "model_step{step:08d}",
    ) -> None:
        """Save a full checkpoint every ``interval`` epochs (-1: after each ``train``'s last).

        ``name`` is a file name (formatted with the epoch logs) inside ``save_path``. With
        ``overwrite`` each new auto-save replaces the previous one *this* configuration wrote.
        ``every_n_train_steps=N`` also saves after every N optimizer steps, inside epochs, as
        ``step_name`` (formatted with ``step`` and ``epoch``); such a file resumes mid-epoch
        (see docs/checkpointing.md, "Mid-epoch checkpoints").
        """
        settings = AutoSaveSettings.checked(
            interval, save_path, name, bool(overwrite), every_n_train_steps, step_name
        )
        self._setup = self._setup.replace(auto_save=settings)
        self._state.saver.reset()

    def _replace_auto_save(self, **changes: Any) -> None:
        if "save_path" in changes:  # the user's own directory: not a loaded file's choice
            changes["write_roots"] = None
        settings = dataclasses.replace(self._setup.auto_save, **changes)
        self._setup = self._setup.replace(auto_save=settings)

    @property
    def save_interval(self) -> int | None:
        return self._setup.auto_save.interval

    @save_interval.setter
    def save_interval(self, value: int | None) -> None:
        self._replace_auto_save(interval=check_interval(value))

    @property
    def save_path(self) -> str:
        return self._setup.auto_save.save_path

    @save_path.setter
    def save_path(self, value: str) -> None:
        self._replace_auto_save(save_path=check_save_path(value))
        self._state.saver.reset()

    @property
    def save_model_name(self) -> str:
        return self._setup.auto_save.name

    @save_model_name.setter
    def save_model_name(self, value: str) -> None:
        self._replace_auto_save(name=check_name(value))

    @property
    def last_saved_model(self) -> str | None:
        """The path of the newest checkpoint this process auto-saved (``None`` before the first)."""
        return self._state.saver.last_saved

    @property
    def overwrite_last_saved(self) -> bool:
        return self._setup.auto_save.overwrite

    @overwrite_last_saved.setter
    def overwrite_last_saved(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"overwrite_last_saved must be a bool, got {value!r}.")
        self._replace_auto_save(overwrite=value)

    # --------------------------------------------------------------- history
    @property
    def train_losses(self) -> list[float]:
        return list(self._state.history.train_losses)

    @property
    def val_losses(self) -> list[float]:
        return list(self._state.history.val_losses)

    @property
    def train_metrics_history(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self._state.history.train_metrics.items()}

    @property
    def val_metrics_history(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self._state.history.val_metrics.items()}

    @property
    def history(self) -> dict[str, Any]:
        """The four history properties in one dict (a copy), keyed by their names."""
        names = ("train_losses", "val_losses", "train_metrics_history", "val_metrics_history")
        return {name: getattr(self, name) for name in names}

    # ------------------------------------------------------------ misc state
    @property
    def device(self) -> torch.device:
        return self._runtime.device

    @property
    def logger(self) -> logging.Logger | None:
        """The handler's logger on rank 0; ``None`` on the other ranks (they log nothing)."""
        return self._runtime.logger if self._runtime.dist.rank == 0 else None

    @property
    def seed(self) -> int | None:
        return self._setup.seed

    @seed.setter
    def seed(self, value: int | None) -> None:
        if value is not None:
            seed_everything(value)
        self._setup = self._setup.replace(seed=value)

    @property
    def ema(self) -> Any:
        """The weights' moving average (``None`` without ``ema_decay``).

        An ``ExponentialMovingAverage`` (``nn_handler._ops.ema``): ``ema.module`` is the averaged
        copy of the model, ``ema.n_averaged`` the number of updates so far.
        """
        return self._state.ema

    @property
    def _stop_training(self) -> bool:
        return self._state.stop_requested

    @_stop_training.setter
    def _stop_training(self, value: bool) -> None:
        if value:
            self._state.request_stop()
        else:
            self._state.clear_stop()

    @property
    def _rank(self) -> int:
        return self._runtime.dist.rank

    @property
    def _local_rank(self) -> int:
        return self._runtime.dist.local_rank

    @property
    def _world_size(self) -> int:
        return self._runtime.dist.world_size

    @property
    def _distributed(self) -> bool:
        return self._runtime.dist.distributed

    # ------------------------------------------------------------- training
    def train(
        self,
        epochs: int,
        validate_every: int | None = 1,
        gradient_accumulation_steps: int = 1,
        use_amp: bool = False,
        gradient_clipping_norm: float | None = None,
        ema_decay: float = 0.0,
        seed: int | None = None,
        progress_bar: bool = True,
        debug_print_interval: int | None = None,
        save_on_last_epoch: bool = True,
        epoch_train_and_val_pbar: bool = False,
        trainer_kwargs: dict[str, Any] | None = None,
        steps_per_execution: int | str = "auto",
    ) -> None:
        """Train for ``epochs`` more epochs (numbering continues from earlier calls).

        Validation runs every ``validate_every`` epochs when a validation loader is set (0 or
        ``None`` disables it). ``trainer_kwargs`` go to ``lightning.Trainer`` unchanged.
        ``steps_per_execution``: batches per Lightning training step (``"auto"``: 16 when no
        Lightning callback needs every batch, else 1; see docs/performance.md).
        """
        options = TrainOptions.checked(
            validate_every=validate_every or 0,
            gradient_accumulation_steps=gradient_accumulation_steps,
            use_amp=use_amp,
            gradient_clipping_norm=gradient_clipping_norm,
            ema_decay=ema_decay,
            progress_bar=progress_bar,
            debug_print_interval=debug_print_interval,
            save_on_last_epoch=save_on_last_epoch,
            epoch_train_and_val_pbar=epoch_train_and_val_pbar,
            trainer_kwargs={} if trainer_kwargs is None else trainer_kwargs,
            steps_per_execution=steps_per_execution,
        )
        engine().check_ready(self._setup, self._runtime, epochs, options)
        self._setup = self._setup.replace(training=options)
        if seed is not None:
            self.seed = seed
        engine().run(self._setup, self._state, self._runtime, epochs)

    def find_lr(
        self,
        min_lr: float = 1e-8,
        max_lr: float = 1.0,
        num_training: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
        apply: bool = False,
    ) -> LRFinderResult:
        """Learning-rate range test (Lightning's ``Tuner.lr_find``) on the training data.

        Trains ``num_training`` steps with the rate growing from ``min_lr`` to ``max_lr``
        (``mode``: ``"exponential"`` or ``"linear"``; stops early when the loss exceeds
        ``early_stop_threshold`` times its best), then restores the weights, the optimizer, the
        history and the random generators. Returns an
        :class:`~nn_handler.adapters.fit.lr_finder.LRFinderResult` (``suggestion``, ``lrs``,
        ``losses``); ``apply=True`` also sets the optimizer's rate to the suggestion (other
        parameter groups and the scheduler keep their ratios to it).
        """
        return engine().find_lr(
            self._setup,
            self._runtime,
            min_lr=min_lr,
            max_lr=max_lr,
            num_training=num_training,
            mode=mode,
            early_stop_threshold=early_stop_threshold,
            apply=apply,
        )

    # ---------------------------------------------------------- checkpoints
    def save(self, path: str | os.PathLike[str], single_file: bool = True) -> None:
        """Write the complete handler state to ``path`` (atomic; rank 0 writes, others wait).

        ``single_file=False``: ``path`` is a directory with one file per checkpoint key.
        """
        if not isinstance(path, (str, bytes)) and not hasattr(path, "__fspath__"):
            raise TypeError(f"save needs a file path, got {type(path).__name__}.")
        if single_file:
            _checkpoint_write.save_handler(self, path)
        else:
            _checkpoint_write.save_handler_files(self, path)

    def get_state_dict(self) -> dict[str, Any]:
        """The complete state :meth:`save` writes, as a dict (``torch.load``-safe values)."""
        return _checkpoint_write.handler_state(self)

    @classmethod
    def load(
        cls,
        path: str,
        device: str | torch.device | None = None,
        strict_load: bool = False,
        skip_optimizer: bool = False,
        skip_scheduler: bool = False,
        skip_history: bool = False,
        skip_callbacks: bool = False,
        skip_sampler_sde: bool = False,
        skip_ema: bool = False,
        **kwargs: Any,
    ) -> NNHandler:
        """Rebuild a handler from a file written by :meth:`save` (or the newest in a directory).

        Extra keyword arguments: ``model_class``, ``model_kwargs``, ``loss_fn``, ``metrics``,
        ``callbacks`` (what the file could not store, or what you would rather give),
        ``trust_checkpoint`` (rebuild functions and ``partial``s the file names: only for files
        you trust), ``safe_modules`` (modules the file may import from, for this load; see
        :func:`nn_handler.register_safe_modules`), ``allow_legacy_pickle`` (unsafe: original
        NNHandler pickles), ``trust_model_code``, ``restore_rng`` (default ``True``); others go
        to the constructor.
        See docs/checkpointing.md.
        """
        return _checkpoint_read.load_handler(
            cls,
            path,
            device=device,
            strict_load=strict_load,
            skip_optimizer=skip_optimizer,
            skip_scheduler=skip_scheduler,
            skip_history=skip_history,
            skip_callbacks=skip_callbacks,
            skip_sampler_sde=skip_sampler_sde,
            skip_ema=skip_ema,
            **kwargs,
        )

    @classmethod
    def initialize_from_checkpoint(
        cls,
        checkpoint_path: str,
        model_class: type[nn.Module],
        model_type: ModelType | str | None = None,
        device: str | torch.device | None = None,
        strict_load: bool = True,
        **model_kwargs: Any,
    ) -> NNHandler:
        """A new handler for ``model_class(**model_kwargs)`` with weights only, read from an
        NNHandler checkpoint, a Lightning checkpoint or a bare ``state_dict``."""
        return _checkpoint_read.initialize_from_checkpoint(
            cls,
            checkpoint_path,
            model_class,
            model_type=model_type,
            device=device,
            strict_load=strict_load,
            **model_kwargs,
        )

    # ----------------------------------------------------------- generative
    def set_sde(self, sde_class: type, **kwargs: Any) -> None:
        """Use ``sde_class(**kwargs)`` for score-based training and sampling."""
        component = _generative.sde_component(sde_class, kwargs)
        self._runtime.sde = _generative.build_sde_checked(component)
        self._setup = self._setup.replace(sde=component)

    @property
    def sde(self) -> Any:
        return self._runtime.sde

    @sde.setter
    def sde(self, value: Any) -> None:
        component = _generative.assigned_sde(value)
        self._runtime.sde = value
        self._setup = self._setup.replace(sde=component)

    def set_sampler(self, sampler_class: type, **kwargs: Any) -> None:
        """Use ``sampler_class(**kwargs)`` (a :class:`~nn_handler.Sampler`) for ``get_samples``.

        A keyword argument that is this handler's model (``model=handler.module``) stays linked
        to the handler's model, also after ``save``/``load``. A sampler object given alone is
        used as it is (``handler.sampler = obj``).
        """
        if not kwargs and _generative.is_sampler_object(sampler_class):
            self.sampler = sampler_class
            return
        component = _generative.sampler_component(sampler_class, kwargs, self.module)
        self._runtime.sampler = _generative.build_sampler_checked(component, self.module)
        self._setup = self._setup.replace(sampler=component)

    @property
    def sampler(self) -> Any:
        return self._runtime.sampler

    @sampler.setter
    def sampler(self, value: Any) -> None:
        component = _generative.assigned_sampler(value)
        self._runtime.sampler = value
        self._setup = self._setup.replace(sampler=component)

    def get_samples(self, N: int, device: str | torch.device | None = None) -> Any:
        """``N`` samples from the configured sampler (rank 0 under DDP; ``None`` elsewhere)."""
        return _generative.get_samples(self._runtime, N, device)

    def score(self, t: torch.Tensor, x: torch.Tensor, *args: Any) -> torch.Tensor:
        """The score ``model(t, x, *args) / sigma(t)`` of a score-based model."""
        return _generative.score(self._runtime, t, x, *args)

    def sample(self, shape: Any = None, steps: int | None = None, **kwargs: Any) -> Any:
        """Reverse-SDE sampling (Euler–Maruyama predictor, optional Langevin corrector);
        ``patch_size=``, ``stride=`` (and ``patch_chunk=``) sample whole images from a model
        trained on patches; ``sample(N=n)`` alone draws from the sampler set by ``set_sampler``."""
        return _generative.sample(self._runtime, self._state, shape, steps, **kwargs)

    def log_likelihood(
        self, x: torch.Tensor, *args: Any, ode_steps: int, **kwargs: Any
    ) -> torch.Tensor:
        """Log-likelihood of ``x`` through the probability-flow ODE (Hutchinson trace)."""
        return _generative.log_likelihood(
            self._runtime, self._state, x, *args, ode_steps=ode_steps, **kwargs
        )

    # --------------------------------------------------------------- export
    def to_lightning_module(self) -> ExportedHandlerModule:
        """A plain ``LightningModule`` carrying this handler's whole setup."""
        return engine().to_lightning_module(self)

    def to_datamodule(self) -> L.LightningDataModule:
        """A ``LightningDataModule`` over this handler's datasets and loader kwargs."""
        if self._runtime.datamodule is not None:
            return self._runtime.datamodule
        return engine().to_datamodule(self._setup, self._state, self._runtime)

    def export_config(self, path: str, strict: bool = True, **train_args: Any) -> None:
        """Write the Lightning CLI YAML that rebuilds this handler.

        ``train_args`` are ``train()``'s arguments for the run the YAML describes (default:
        those of the last ``train()`` call). What has no import path (a lambda, a class in
        ``__main__``, in-memory data) raises ``ValueError`` naming each key, or with
        ``strict=False`` is warned about and left null.
        """
        engine().write_config(self._setup, self._runtime, path, strict=strict, **train_args)

    # ------------------------------------------------------------ inference
    def predict(self, data_loader: Any, apply_ema: bool = True) -> list[Any] | None:
        """Model outputs for every batch of ``data_loader``, on the CPU, in order.

        Under DDP every rank must call it: rank 0 gets all outputs in dataset order, the other
        ranks get ``None``.
        """
        return _inference.predict(self._setup, self._state, self._runtime, data_loader, apply_ema)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def eval(self, activate: bool = True, log: bool = True) -> None:
        """Put the model in eval mode (``activate=False``: back to train mode, except the
        modules registered with :meth:`keep_eval_on_module`, which stay in eval mode)."""
        self.module.train(not activate)
        for module in self._setup.eval_modules:
            module.eval()
        if log:
            self._runtime.logger.info("Model set to %s mode.", "eval" if activate else "train")

    def keep_eval_on_module(self, module: nn.Module, activate: bool = True) -> None:
        """Keep ``module`` (a submodule) in eval mode during training (e.g. frozen BatchNorm);
        ``activate=False`` unregisters it and returns it to the model's mode (train mode while
        the model trains)."""
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"keep_eval_on_module expects an nn.Module, got {type(module).__name__}."
            )
        others = tuple(m for m in self._setup.eval_modules if m is not module)
        if activate:
            module.eval()
            self._setup = self._setup.replace(eval_modules=(*others, module))
        else:
            self._setup = self._setup.replace(eval_modules=others)
            module.train(self.module.training)

    def freeze_module(self, module: nn.Module, verbose: bool = False) -> None:
        """Stop gradients for every parameter of ``module``."""
        if not isinstance(module, nn.Module):
            raise TypeError(f"freeze_module expects an nn.Module, got {type(module).__name__}.")
        count = 0
        for param in module.parameters():
            param.requires_grad_(False)
            count += param.numel()
        if verbose:
            self._runtime.logger.info("Froze %d parameters of %s.", count, type(module).__name__)

    def count_parameters(self, trainable_only: bool = True) -> int:
        params = self.module.parameters()
        return sum(p.numel() for p in params if p.requires_grad or not trainable_only)

    def compile_model(self, **kwargs: Any) -> None:
        """Train and predict through ``torch.compile(model, **kwargs)``."""
        # torch.compile of a Module returns a Module (an OptimizedModule).
        self._runtime.compiled = cast(nn.Module, torch.compile(self.module, **kwargs))
        self._setup = self._setup.replace(compile_kwargs=dict(kwargs))

    def print(self, show_model_structure: bool = False) -> str:
        """A summary of the configuration (and the model structure if asked)."""
        return _plotting.summary(self._setup, self._state, self._runtime, show_model_structure)

    def __str__(self) -> str:
        return self.print()

    def __repr__(self) -> str:
        return f"NNHandler({self._setup.model.name}, device={str(self.device)!r})"

    def plot_losses(self, log_y_scale: bool = False, save_path: str | None = None) -> Any:
        """Plot training/validation losses (rank 0); write a PNG when ``save_path`` is given.

        Returns the matplotlib ``Figure`` (``None`` on other ranks)."""
        every = self._setup.training.validate_every
        return _plotting.plot_losses(self._state.history, self._rank, log_y_scale, save_path, every)

    def plot_metrics(self, log_y_scale: bool = False, save_path_prefix: str | None = None) -> Any:
        """Plot each metric (rank 0); write ``<prefix>_metric_<name>.png`` given a prefix.

        Returns ``{metric name: Figure}`` (``None`` on other ranks)."""
        every = self._setup.training.validate_every
        history = self._state.history
        return _plotting.plot_metrics(history, self._rank, log_y_scale, save_path_prefix, every)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: fall through to the bare model.
        if name.startswith("__") or name in ("_runtime", "_setup", "_state"):
            raise AttributeError(name)
        runtime = self.__dict__.get("_runtime")
        if runtime is not None and hasattr(runtime.module, name):
            return getattr(runtime.module, name)
        raise AttributeError(f"Neither NNHandler nor its model has an attribute {name!r}.")


def _source_of(cls: type) -> str | None:
    return model_code(cls)
