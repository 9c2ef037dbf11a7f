"""``NNHandler``: the drop-in facade that keeps a training setup and runs it on Lightning."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from . import _inference, _plotting, _training
from ._autosave_config import AutoSaveConfig, check_interval, check_name
from ._data import DataSlot, make_slot
from ._devices import resolve_device
from ._dist_env import detect_distributed
from ._logging import make_logger
from ._loss import LossSpec
from ._metrics import MetricSet
from ._seeding import seed_everything
from .callbacks.base import Callback
from .enums import LoggingMode, ModelType
from .history import History

__all__ = ["NNHandler"]

_SCHEDULER_BASES: tuple[type, ...] = (
    torch.optim.lr_scheduler.LRScheduler,
    torch.optim.lr_scheduler.ReduceLROnPlateau,
)


def _is_lightning_callback(obj: Any) -> bool:
    from lightning.pytorch.callbacks import Callback as LightningCallback

    return isinstance(obj, LightningCallback)


class NNHandler:
    """Keeps a model, its training configuration and its history; ``train()`` runs on Lightning.

    Args:
        model_class: an ``nn.Module`` subclass, instantiated with the model kwargs.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``. CUDA on a machine
            without it falls back to the CPU with a warning. Under DDP the device is chosen per
            rank.
        logger_mode: :class:`LoggingMode` (or its name) or ``None`` for no log records.
        logger_filename, logger_filemode, logger_level: the log file and level.
        save_model_code: keep the model class's source text in checkpoints (never executed).
        model_type: :class:`ModelType` or its case-insensitive name.
        use_distributed: ``True`` require DDP, ``False`` never, ``None`` detect.
        ddp_kwargs: options for the DDP strategy (e.g. ``find_unused_parameters``).
        **model_kwargs: the model's constructor arguments (or ``model_kwargs={...}``).
    """

    ModelType = ModelType
    LoggingMode = LoggingMode

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
        if ddp_kwargs is not None and not isinstance(ddp_kwargs, dict):
            raise TypeError(f"ddp_kwargs must be a dict or None, got {type(ddp_kwargs).__name__}.")
        self._dist = detect_distributed(use_distributed)
        self._ddp_kwargs = dict(ddp_kwargs or {})
        self._device = _training.device_for_rank(resolve_device(device), self._dist)
        self._logger = make_logger(
            logger_mode, logger_filename, logger_filemode, logger_level, self._dist.rank
        )
        self._stop_training = False
        self._seed: int | None = None
        self._history = History()
        self._metrics = MetricSet()
        self._callbacks: list[Any] = []
        self._eval_modules: list[nn.Module] = []
        self._auto_save = AutoSaveConfig()
        self._loss: LossSpec | None = None
        self._train_data: DataSlot | None = None
        self._val_data: DataSlot | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._optimizer_class: type | None = None
        self._optimizer_kwargs: dict[str, Any] = {}
        self._scheduler: Any = None
        self._scheduler_class: type | None = None
        self._scheduler_kwargs: dict[str, Any] = {}
        self._ema: Any = None
        self._ema_decay = 0.0
        self._grad_scaler: Any = None
        self._global_step = 0
        self._compiled: nn.Module | None = None
        self._sde: Any = None
        self._sde_class: type | None = None
        self._sde_kwargs: dict[str, Any] = {}
        self._sampler: Any = None
        self._sampler_class: type | None = None
        self._sampler_kwargs: dict[str, Any] = {}
        self._module: nn.Module | None = None
        self.set_model(
            model_class, save_model_code=save_model_code, model_type=model_type, **model_kwargs
        )
        if self._dist.distributed:
            _training.init_process_group(self)
        self._logger.info(
            "NNHandler ready: %s on %s (%s).",
            self._model_class.__name__,
            self._device,
            self._model_type.value,
        )

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
        if model_type is not None:
            self._model_type = ModelType.parse(model_type)
        elif not hasattr(self, "_model_type"):
            self._model_type = ModelType.CLASSIFICATION
        if ddp_kwargs is not None:
            if not isinstance(ddp_kwargs, dict):
                raise TypeError(f"ddp_kwargs must be a dict, got {type(ddp_kwargs).__name__}.")
            self._ddp_kwargs = dict(ddp_kwargs)
        try:
            module = model_class(**model_kwargs)
        except TypeError as err:
            raise TypeError(
                f"Could not build {model_class.__name__} with kwargs {model_kwargs}: {err}"
            ) from err
        self._model_class = model_class
        self._model_kwargs = dict(model_kwargs)
        self._save_model_code = bool(save_model_code)
        self._model_code = _source_of(model_class) if save_model_code else None
        self._module = module.to(self._device)
        self._compiled = None
        self._eval_modules = []
        self._ema = None
        if self._optimizer_class is not None:
            self.set_optimizer(self._optimizer_class, **self._optimizer_kwargs)

    @property
    def model(self) -> nn.Module:
        """The model used for training (compiled when ``compile_model`` was called)."""
        return self._compiled if self._compiled is not None else self._module

    @property
    def module(self) -> nn.Module:
        """The bare ``nn.Module``, never wrapped."""
        return self._module

    @property
    def model_kwargs(self) -> dict[str, Any]:
        return dict(self._model_kwargs)

    @property
    def model_code(self) -> str | None:
        return self._model_code

    @property
    def model_type(self) -> ModelType:
        return self._model_type

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
        try:
            optimizer = optimizer_class(self._module.parameters(), **kwargs)
        except (TypeError, ValueError) as err:
            raise type(err)(f"Could not build {optimizer_class.__name__}: {err}") from err
        self._optimizer_class, self._optimizer_kwargs = optimizer_class, dict(kwargs)
        self._optimizer = optimizer
        if self._scheduler_class is not None:
            self.set_scheduler(self._scheduler_class, **self._scheduler_kwargs)

    def set_scheduler(self, scheduler_class: type | None, **kwargs: Any) -> None:
        """Set an LR scheduler stepped once per epoch (``None`` removes it).

        ``ReduceLROnPlateau`` steps on ``val_loss`` when validation ran, else on ``loss``.
        """
        if scheduler_class is None:
            self._scheduler = self._scheduler_class = None
            self._scheduler_kwargs = {}
            return
        if not (inspect.isclass(scheduler_class) and issubclass(scheduler_class, _SCHEDULER_BASES)):
            raise TypeError(
                "scheduler_class must be a torch.optim.lr_scheduler class (or None), got "
                f"{scheduler_class!r}."
            )
        if self._optimizer is None:
            raise RuntimeError(
                "Set an optimizer with set_optimizer(...) before set_scheduler(...)."
            )
        try:
            scheduler = scheduler_class(self._optimizer, **kwargs)
        except (TypeError, ValueError) as err:
            raise type(err)(f"Could not build {scheduler_class.__name__}: {err}") from err
        self._scheduler_class, self._scheduler_kwargs = scheduler_class, dict(kwargs)
        self._scheduler = scheduler

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        return self._optimizer

    @property
    def scheduler(self) -> Any:
        return self._scheduler

    # ------------------------------------------------------------------ loss
    def set_loss_fn(
        self, loss_fn: Callable[..., Any], pass_epoch_to_loss: bool = False, **kwargs: Any
    ) -> None:
        """Set the loss; ``kwargs`` are passed on every call (``epoch=`` too if asked)."""
        self._loss = LossSpec(loss_fn, dict(kwargs), bool(pass_epoch_to_loss))

    @property
    def loss_fn(self) -> Callable[..., Any] | None:
        return self._loss.fn if self._loss else None

    @property
    def pass_epoch_to_loss(self) -> bool:
        return bool(self._loss and self._loss.pass_epoch)

    @pass_epoch_to_loss.setter
    def pass_epoch_to_loss(self, value: bool) -> None:
        if self._loss is None:
            raise RuntimeError("Set a loss with set_loss_fn(...) first.")
        self._loss = LossSpec(self._loss.fn, self._loss.kwargs, bool(value))

    @property
    def loss_fn_kwargs(self) -> dict[str, Any]:
        return dict(self._loss.kwargs) if self._loss else {}

    @loss_fn_kwargs.setter
    def loss_fn_kwargs(self, value: dict[str, Any]) -> None:
        if not isinstance(value, dict):
            raise TypeError(f"loss_fn_kwargs must be a dict, got {type(value).__name__}.")
        if self._loss is None:
            raise RuntimeError("Set a loss with set_loss_fn(...) first.")
        self._loss = LossSpec(self._loss.fn, dict(value), self._loss.pass_epoch)

    # ------------------------------------------------------------------ data
    def set_train_loader(self, dataset: Any, **loader_kwargs: Any) -> None:
        """Train on ``dataset`` read with ``DataLoader(**loader_kwargs)``; under DDP the loader
        reads this rank's shard (its sampler is a ``DistributedSampler``)."""
        self._train_data = make_slot(dataset, loader_kwargs, "train", self._dist, self._seed)

    def set_val_loader(self, dataset: Any, **loader_kwargs: Any) -> None:
        """Validate on ``dataset`` read with ``DataLoader(**loader_kwargs)`` (under DDP: this
        rank's share, unshuffled, no sample repeated)."""
        self._val_data = make_slot(dataset, loader_kwargs, "val", self._dist)

    @property
    def train_loader(self):
        return self._train_data.loader if self._train_data else None

    @property
    def val_loader(self):
        return self._val_data.loader if self._val_data else None

    # --------------------------------------------------------------- metrics
    def add_metric(self, name: str, metric_fn: Callable[..., Any]) -> None:
        """Track ``metric_fn(outputs, targets)`` (or a ``torchmetrics.Metric``) under ``name``."""
        self._metrics.add(name, metric_fn)

    def clear_metrics(self) -> None:
        self._metrics.clear()

    @property
    def metrics(self) -> dict[str, Callable[..., Any]]:
        return self._metrics.as_dict()

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
        self._callbacks.append(callback)

    def remove_callback(self, callback: Any) -> None:
        try:
            self._callbacks.remove(callback)
        except ValueError:
            raise ValueError(
                f"{type(callback).__name__} is not among this handler's callbacks."
            ) from None

    def clear_callbacks(self) -> None:
        self._callbacks.clear()

    @property
    def callbacks(self) -> list[Any]:
        return list(self._callbacks)

    # ------------------------------------------------------------ auto-save
    def auto_save(
        self,
        interval: int | None,
        save_path: str = ".",
        name: str = "model_epoch{epoch:02d}",
        overwrite: bool = False,
    ) -> None:
        """Save a full checkpoint every ``interval`` epochs (-1: after each ``train``'s last)."""
        self._auto_save.interval = check_interval(interval)
        self._auto_save.save_path = str(save_path)
        self._auto_save.name = check_name(name)
        self._auto_save.overwrite = bool(overwrite)

    @property
    def save_interval(self) -> int | None:
        return self._auto_save.interval

    @save_interval.setter
    def save_interval(self, value: int | None) -> None:
        self._auto_save.interval = check_interval(value)

    @property
    def save_path(self) -> str:
        return self._auto_save.save_path

    @save_path.setter
    def save_path(self, value: str) -> None:
        if not isinstance(value, (str, bytes)) and not hasattr(value, "__fspath__"):
            raise TypeError(f"save_path must be a path, got {type(value).__name__}.")
        self._auto_save.save_path = str(value)

    @property
    def save_model_name(self) -> str:
        return self._auto_save.name

    @save_model_name.setter
    def save_model_name(self, value: str) -> None:
        self._auto_save.name = check_name(value)

    @property
    def overwrite_last_saved(self) -> bool:
        return self._auto_save.overwrite

    @overwrite_last_saved.setter
    def overwrite_last_saved(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"overwrite_last_saved must be a bool, got {value!r}.")
        self._auto_save.overwrite = value

    # --------------------------------------------------------------- history
    @property
    def train_losses(self) -> list[float]:
        return list(self._history.train_losses)

    @property
    def val_losses(self) -> list[float]:
        return list(self._history.val_losses)

    @property
    def train_metrics_history(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self._history.train_metrics.items()}

    @property
    def val_metrics_history(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self._history.val_metrics.items()}

    @property
    def history(self) -> dict[str, Any]:
        """The four history properties in one dict (a copy), keyed by their names."""
        names = ("train_losses", "val_losses", "train_metrics_history", "val_metrics_history")
        return {name: getattr(self, name) for name in names}

    # ------------------------------------------------------------ misc state
    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def logger(self) -> logging.Logger | None:
        """The handler's logger on rank 0; ``None`` on the other ranks (they log nothing)."""
        return self._logger if self._dist.rank == 0 else None

    @property
    def seed(self) -> int | None:
        return self._seed

    @seed.setter
    def seed(self, value: int | None) -> None:
        if value is not None:
            seed_everything(value)
        self._seed = value

    @property
    def ema(self) -> Any:
        """The ``AveragedModel`` holding the EMA weights (``None`` without ``ema_decay``)."""
        return self._ema

    @property
    def _rank(self) -> int:
        return self._dist.rank

    @property
    def _local_rank(self) -> int:
        return self._dist.local_rank

    @property
    def _world_size(self) -> int:
        return self._dist.world_size

    @property
    def _distributed(self) -> bool:
        return self._dist.distributed

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
    ) -> None:
        """Train for ``epochs`` more epochs (numbering continues from earlier calls).

        Validation runs every ``validate_every`` epochs when a validation loader is set (0 or
        ``None`` disables it). ``trainer_kwargs`` go to ``lightning.Trainer`` unchanged.
        """
        _training.run(
            self,
            epochs=epochs,
            validate_every=validate_every,
            gradient_accumulation_steps=gradient_accumulation_steps,
            use_amp=use_amp,
            gradient_clipping_norm=gradient_clipping_norm,
            ema_decay=ema_decay,
            seed=seed,
            progress_bar=progress_bar,
            debug_print_interval=debug_print_interval,
            save_on_last_epoch=save_on_last_epoch,
            epoch_train_and_val_pbar=epoch_train_and_val_pbar,
            trainer_kwargs=trainer_kwargs,
        )

    # ---------------------------------------------------------- checkpoints
    def save(self, path: str) -> None:
        """Write the complete handler state to ``path`` (atomic; rank 0 writes, others wait)."""
        from .checkpoint import save_handler

        if not isinstance(path, (str, bytes)) and not hasattr(path, "__fspath__"):
            raise TypeError(f"save needs a file path, got {type(path).__name__}.")
        save_handler(self, path)

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
        ``callbacks`` (what the file could not store), ``allow_legacy_pickle`` (unsafe: original
        NNHandler pickles), ``trust_model_code``, ``restore_rng`` (default ``True``); others go
        to the constructor. See docs/checkpointing.md.
        """
        from .checkpoint import load_handler

        return load_handler(
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

    @staticmethod
    def initialize_from_checkpoint(
        checkpoint_path: str,
        model_class: type[nn.Module],
        model_type: ModelType | str | None = None,
        device: str | torch.device | None = None,
        strict_load: bool = True,
        **model_kwargs: Any,
    ) -> NNHandler:
        """A new handler for ``model_class(**model_kwargs)`` with weights only, read from an
        NNHandler checkpoint, a Lightning checkpoint or a bare ``state_dict``."""
        from .checkpoint import initialize_from_checkpoint

        return initialize_from_checkpoint(
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
        from .generative.handler_ops import set_sde

        set_sde(self, sde_class, **kwargs)

    @property
    def sde(self) -> Any:
        return self._sde

    @sde.setter
    def sde(self, value: Any) -> None:
        from .generative.handler_ops import assign_sde

        assign_sde(self, value)

    def set_sampler(self, sampler_class: type, **kwargs: Any) -> None:
        """Use ``sampler_class(**kwargs)`` (a :class:`~nn_handler.Sampler`) for ``get_samples``."""
        from .generative.handler_ops import set_sampler

        set_sampler(self, sampler_class, **kwargs)

    @property
    def sampler(self) -> Any:
        return self._sampler

    @sampler.setter
    def sampler(self, value: Any) -> None:
        from .generative.handler_ops import assign_sampler

        assign_sampler(self, value)

    def get_samples(self, N: int, device: str | torch.device | None = None) -> Any:
        """``N`` samples from the configured sampler (rank 0 under DDP; ``None`` elsewhere)."""
        from .generative.handler_ops import get_samples

        return get_samples(self, N, device)

    def score(self, t: torch.Tensor, x: torch.Tensor, *args: Any) -> torch.Tensor:
        """The score ``model(t, x, *args) / sigma(t)`` of a score-based model."""
        from .generative.handler_ops import score

        return score(self, t, x, *args)

    def sample(self, shape: Any = None, steps: int | None = None, **kwargs: Any) -> Any:
        """Reverse-SDE sampling (Euler–Maruyama predictor, optional Langevin corrector);
        ``sample(N=n)`` alone draws from the sampler set by ``set_sampler``."""
        from .generative.handler_ops import sample

        return sample(self, shape, steps, **kwargs)

    def log_likelihood(self, x: torch.Tensor, *args: Any, ode_steps: int, **kwargs: Any):
        """Log-likelihood of ``x`` through the probability-flow ODE (Hutchinson trace)."""
        from .generative.handler_ops import log_likelihood

        return log_likelihood(self, x, *args, ode_steps=ode_steps, **kwargs)

    # --------------------------------------------------------------- export
    def to_lightning_module(self):
        """A plain ``LightningModule`` carrying this handler's whole setup."""
        from .adapters.export import to_lightning_module

        return to_lightning_module(self)

    def to_datamodule(self):
        """A ``LightningDataModule`` over this handler's datasets and loader kwargs."""
        from .adapters.export import to_datamodule

        return to_datamodule(self)

    def export_config(self, path: str, strict: bool = True, **train_args: Any) -> None:
        """Write the Lightning CLI YAML that rebuilds this handler.

        ``train_args`` are ``train()``'s arguments for the run the YAML describes.
        What has no import path (a lambda, a class in ``__main__``, in-memory data) raises
        ``ValueError`` naming each key, or with ``strict=False`` is warned about and left null.
        """
        from .adapters.export import export_config

        export_config(self, path, strict=strict, **train_args)

    # ------------------------------------------------------------ inference
    def predict(self, data_loader: Any, apply_ema: bool = True) -> list[Any] | None:
        """Model outputs for every batch of ``data_loader``, on the CPU, in order.

        Under DDP every rank must call it: rank 0 gets all outputs in dataset order, the other
        ranks get ``None``.
        """
        return _inference.predict(self, data_loader, apply_ema)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def eval(self, activate: bool = True, log: bool = True) -> None:
        """Put the model in eval mode (``activate=False``: back to train mode, except the
        modules registered with :meth:`keep_eval_on_module`, which stay in eval mode)."""
        self._module.train(not activate)
        for module in self._eval_modules:
            module.eval()
        if log:
            self._logger.info("Model set to %s mode.", "eval" if activate else "train")

    def keep_eval_on_module(self, module: nn.Module, activate: bool = True) -> None:
        """Keep ``module`` (a submodule) in eval mode during training (e.g. frozen BatchNorm);
        ``activate=False`` unregisters it and returns it to the model's mode (train mode while
        the model trains)."""
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"keep_eval_on_module expects an nn.Module, got {type(module).__name__}."
            )
        if activate:
            if all(m is not module for m in self._eval_modules):
                self._eval_modules.append(module)
            module.eval()
        else:
            self._eval_modules = [m for m in self._eval_modules if m is not module]
            module.train(self._module.training)

    def freeze_module(self, module: nn.Module, verbose: bool = False) -> None:
        """Stop gradients for every parameter of ``module``."""
        if not isinstance(module, nn.Module):
            raise TypeError(f"freeze_module expects an nn.Module, got {type(module).__name__}.")
        count = 0
        for param in module.parameters():
            param.requires_grad_(False)
            count += param.numel()
        if verbose:
            self._logger.info("Froze %d parameters of %s.", count, type(module).__name__)

    def count_parameters(self, trainable_only: bool = True) -> int:
        params = self._module.parameters()
        return sum(p.numel() for p in params if p.requires_grad or not trainable_only)

    def compile_model(self, **kwargs: Any) -> None:
        """Train and predict through ``torch.compile(model, **kwargs)``."""
        self._compiled = torch.compile(self._module, **kwargs)

    def print(self, show_model_structure: bool = False) -> str:
        """A summary of the configuration (and the model structure if asked)."""
        return _plotting.summary(self, show_model_structure)

    def __str__(self) -> str:
        return self.print()

    def __repr__(self) -> str:
        return f"NNHandler({self._model_class.__name__}, device={str(self._device)!r})"

    def plot_losses(self, log_y_scale: bool = False, save_path: str | None = None) -> None:
        """Plot training/validation losses (rank 0); write a PNG when ``save_path`` is given."""
        _plotting.plot_losses(self, log_y_scale, save_path)

    def plot_metrics(self, log_y_scale: bool = False, save_path_prefix: str | None = None) -> None:
        """Plot each metric (rank 0); write ``<prefix>_metric_<name>.png`` given a prefix."""
        _plotting.plot_metrics(self, log_y_scale, save_path_prefix)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: fall through to the bare model.
        if name.startswith("__") or name == "_module":
            raise AttributeError(name)
        module = self.__dict__.get("_module")
        if module is not None and hasattr(module, name):
            return getattr(module, name)
        raise AttributeError(f"Neither NNHandler nor its model has an attribute {name!r}.")


def _source_of(cls: type) -> str | None:
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        return None
