"""The generated LightningModule that runs an NNHandler configuration."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

import lightning as L
import torch
from torch import nn

from ..._ops.batches import BatchReader, batch_size_of, predict_outputs
from ..._state.loss import LossSpec
from ..._state.metrics import is_torchmetric
from ..._state.run_state import RunState
from ...enums import ModelType
from ...history import History
from ..fit.trainer_factory import mirror_step_counters
from .collectives import any_rank, sum_over_ranks
from .epoch_stats import EpochStats
from .learning_rate import scale_learning_rate

if TYPE_CHECKING:
    from torchmetrics import Metric

    from .manual_steps import ManualSteps

__all__ = ["HandlerModule"]

_PLATEAU = torch.optim.lr_scheduler.ReduceLROnPlateau


class HandlerModule(L.LightningModule):
    """A LightningModule built from a handler's model, loss, metrics, optimizer and scheduler.

    The optimizer and scheduler are the handler's own objects, so their state carries over from
    one ``train()`` call to the next. Epoch values are accumulated on the device and reduced once
    per epoch by :class:`~nn_handler.adapters.hooks.epoch_logs.EpochLogs`.

    Args:
        model: the bare ``nn.Module``.
        model_type: how batches are read (:class:`~nn_handler.ModelType`).
        loss: the loss specification.
        metrics: ``name -> fn(outputs, targets)`` or ``name -> torchmetrics.Metric``.
        optimizer: a built optimizer over ``model``'s parameters.
        scheduler: an optional built scheduler over ``optimizer``; stepped once per epoch.
        sde: the SDE object given to score-based losses.
        run_state: where epoch values are recorded; its ``ema`` (if any, an
            ``ExponentialMovingAverage``) is updated after each optimizer step and its
            ``stop_requested`` flag ends training after an epoch.
        eval_modules: submodules kept in eval mode during training.
        debug_print_interval: log the batch loss every N training batches.
        logger: the handler's Python logger.
        steps: with a :class:`~nn_handler.adapters.steps.manual_steps.ManualSteps`, the module uses
            manual optimization and ``steps`` does backward, accumulation, clipping, AMP and the
            optimizer step (``train()``); without, Lightning's automatic optimization does them
            with the Trainer's settings (the exported module, for any Trainer).
        checkpoint_keys: ``trainer -> the handler's checkpoint entries``; every checkpoint
            Lightning writes while fitting the module (a user's ``ModelCheckpoint`` too) then
            also holds them, so ``NNHandler.load`` reads it.
    """

    #: Whether the module calls the per-batch hooks of the handler's own callbacks itself.
    calls_batch_hooks = False

    # Plain attributes (set through __dict__, outside nn.Module's registry), declared for mypy.
    run_state: RunState
    steps: ManualSteps | None
    checkpoint_keys: Callable[[Any], dict[str, Any]] | None
    in_epoch: bool
    _resumed_stats: dict[str, Any] | None

    def __init__(
        self,
        model: nn.Module,
        model_type: ModelType,
        loss: LossSpec,
        metrics: dict[str, Callable[..., Any]] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        sde: Any = None,
        run_state: RunState | None = None,
        eval_modules: list[nn.Module] | None = None,
        debug_print_interval: int | None = None,
        logger: logging.Logger | None = None,
        steps: Any = None,
        checkpoint_keys: Callable[[Any], dict[str, Any]] | None = None,
    ):
        super().__init__()
        self.model = model
        self.model_type = ModelType.parse(model_type)
        self.loss = loss
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.sde = sde
        # A plain attribute: the run state (and the EMA copy it holds) is neither trained nor
        # checkpointed as part of the model's state_dict.
        self.__dict__["run_state"] = run_state if run_state is not None else RunState()
        self.eval_modules = list(eval_modules or [])
        self.debug_print_interval = debug_print_interval
        self.py_logger = logger or logging.getLogger("nn_handler")
        self.reader = BatchReader(self.model_type, model)
        metrics = dict(metrics or {})
        self.metric_names = list(metrics)
        if self.model_type is ModelType.SCORE_BASED:
            metrics = {}
        self.plain_metrics = {k: f for k, f in metrics.items() if not is_torchmetric(f)}
        self.train_torchmetrics = nn.ModuleDict(
            {k: f.clone() for k, f in metrics.items() if is_torchmetric(f)}
        )
        self.val_torchmetrics = nn.ModuleDict(
            {k: f.clone() for k, f in metrics.items() if is_torchmetric(f)}
        )
        self.train_stats = EpochStats()
        self.val_stats = EpochStats()
        self.last_batch_values: dict[str, Any] = {}
        self.epoch_logs: dict[str, Any] = {}
        self._nonfinite_warned = False
        self.__dict__["steps"] = steps
        self.__dict__["checkpoint_keys"] = checkpoint_keys
        self.__dict__["in_epoch"] = False  # between a training epoch's start and its end hooks
        self.__dict__["_resumed_stats"] = None
        if steps is not None:
            self.automatic_optimization = False

    # Lightning sets ``_current_fx_name`` around every hook call (~30 times a training step) and
    # nn.Module.__setattr__ scans the parameter, buffer and module dicts each time. These names
    # never hold parameters, buffers or modules, so they are stored directly.
    _PLAIN_ATTRIBUTES = frozenset({"_current_fx_name", "last_batch_values", "epoch_logs"})

    def __setattr__(self, name: str, value: Any) -> None:
        if name in HandlerModule._PLAIN_ATTRIBUTES:
            self.__dict__[name] = value
        else:
            super().__setattr__(name, value)

    @property
    def history(self) -> History:
        return self.run_state.history

    @property
    def ema(self) -> Any:
        return self.run_state.ema

    # ----------------------------------------------------------------- steps
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def _compute(self, batch: Any, training: bool) -> tuple[Any, Any, Any, torch.Tensor]:
        inputs, targets, extra = self.reader.split(batch)
        epoch = self.trainer.current_epoch if self._trainer is not None else 0
        if self.model_type is ModelType.SCORE_BASED:
            if self.sde is None:
                raise RuntimeError(
                    "ModelType.SCORE_BASED needs an SDE: call handler.set_sde(SDEClass, ...) first."
                )
            loss = self.loss(inputs, self.sde, self.model, self.device, epoch=epoch)
            return inputs, targets, None, loss
        outputs = self.reader.forward(self.model, inputs, extra, training)
        target = inputs if self.model_type is ModelType.GENERATIVE else targets
        return inputs, targets, outputs, self.loss(outputs, target, epoch=epoch)

    def _update_metrics(
        self, stats: EpochStats, tms: nn.ModuleDict, outputs: Any, targets: Any, prefix: str
    ) -> dict[str, Any]:
        values = {}
        with torch.no_grad():
            for name, fn in self.plain_metrics.items():
                value = fn(outputs, targets)
                stats.add_metric(name, value)
                values[prefix + name] = value
            for name, metric in tms.items():
                values[prefix + name] = metric(outputs, targets)
        return values

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        for module in self.eval_modules:
            module.eval()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        loss = self.train_batch(batch, batch_idx)
        if self.steps is None:
            return loss
        return self.steps.run(self, loss, batch_idx)

    def train_batch(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        """Forward, loss and epoch sums of one batch; ``None`` when the loss is not finite."""
        inputs, targets, outputs, loss = self._compute(batch, training=True)
        if not loss.requires_grad:
            raise RuntimeError(
                "The training loss does not require grad: every parameter it depends on is "
                "frozen (or the loss was computed without autograd). Unfreeze some parameters."
            )
        # The one per-step host read: skipping a non-finite step (SPEC §3.4) is a decision the
        # host must make before backward. Epoch values never sync per step (EpochStats).
        if not math.isfinite(loss.item()):
            if not self._nonfinite_warned:
                self._nonfinite_warned = True
                warnings.warn(
                    f"Non-finite training loss ({loss.item()}) at epoch {self.current_epoch + 1}, "
                    f"batch {batch_idx}; the optimizer step for this batch is skipped "
                    "(warned once).",
                    RuntimeWarning,
                    stacklevel=2,
                )
            self.last_batch_values = {"loss": loss.detach()}
            return None
        n = batch_size_of(inputs)
        self.train_stats.add_loss(loss, n)
        values = {"loss": loss.detach()}
        if outputs is not None and (self.plain_metrics or len(self.train_torchmetrics)):
            values.update(
                self._update_metrics(
                    self.train_stats, self.train_torchmetrics, outputs, targets, ""
                )
            )
        self.last_batch_values = values
        if self.debug_print_interval and batch_idx % self.debug_print_interval == 0:
            self.py_logger.info(
                "epoch %d batch %d loss %.6f", self.current_epoch + 1, batch_idx, loss.item()
            )
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        inputs, targets, outputs, loss = self._compute(batch, training=False)
        n = batch_size_of(inputs)
        self.val_stats.add_loss(loss, n)
        values = {"val_loss": loss.detach()}
        if outputs is not None and (self.plain_metrics or len(self.val_torchmetrics)):
            values.update(
                self._update_metrics(
                    self.val_stats, self.val_torchmetrics, outputs, targets, "val_"
                )
            )
        self.last_batch_values = values

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        return predict_outputs(self.reader, self.model, batch)

    def resume_epoch(self, train_stats: dict[str, Any] | None) -> None:
        """The fit starts inside an epoch: its first epoch continues these partial sums."""
        self.__dict__["_resumed_stats"] = train_stats

    def on_train_epoch_start(self) -> None:
        self.__dict__["in_epoch"] = True

    def on_train_start(self) -> None:
        # A fit resumed inside an epoch gets no on_train_epoch_start for that epoch.
        resumed, self.__dict__["_resumed_stats"] = self._resumed_stats, None
        if resumed is not None:
            self.__dict__["in_epoch"] = True
            self.reset_stage("train")
            self.train_stats.load_state_dict(resumed, self.device)
        if self.steps is not None:
            self.steps.attach(self)

    def on_train_epoch_end(self) -> None:
        # Runs after every non-monitoring callback (native ones included) and before the
        # AutoSaver, so a stop requested this epoch still gets its checkpoint. Any rank asking
        # stops all of them together.
        self.__dict__["in_epoch"] = False  # the epoch's history is recorded: checkpoints hold it
        stop = bool(self.run_state.stop_requested)
        if self.trainer.world_size > 1:
            stop = any_rank(self.trainer.strategy, stop)
        if stop:
            self.trainer.should_stop = True

    # ---------------------------------------------------------- epoch values
    def reset_stage(self, stage: str) -> None:
        stats, tms = self._stage(stage)
        stats.reset()
        for metric in cast("Iterable[Metric]", tms.values()):  # a stage's dict holds Metrics
            metric.reset()

    def _stage(self, stage: str) -> tuple[EpochStats, nn.ModuleDict]:
        if stage == "train":
            return self.train_stats, self.train_torchmetrics
        return self.val_stats, self.val_torchmetrics

    def reduce_stage(self, stage: str) -> dict[str, float]:
        """Epoch values of ``stage`` over all ranks: ``loss`` and each metric by name."""
        stats, tms = self._stage(stage)
        world = self.trainer.world_size if self._trainer is not None else 1
        reducer = None
        if world > 1:

            def reducer(t: torch.Tensor) -> torch.Tensor:
                return sum_over_ranks(self.trainer.strategy, t)

        values = stats.reduce(self.device, reducer)
        for name, metric in cast("Iterable[tuple[str, Metric]]", tms.items()):
            values[name] = float(metric.compute()) if metric.update_count else math.nan
        ordered = {"loss": values["loss"]}
        for name in self.metric_names:
            if name in values:
                ordered[name] = values[name]
        return ordered

    # ----------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add the handler's keys, so ``NNHandler.load`` reads what Lightning writes."""
        if self.checkpoint_keys is None:
            return
        steps = int(self.trainer.global_step)
        self.run_state.record_global_step(steps)
        for key, value in self.checkpoint_keys(self.trainer).items():
            # Lightning's own keys (state_dict, loops, optimizer_states, ...) stay authoritative.
            checkpoint.setdefault(key, value)
        # The file resumes either module (train()'s manual or the exported automatic one).
        mirror_step_counters(checkpoint.get("loops", {}), steps)
        if self.in_epoch:  # before this epoch's history: NNHandler.load resumes inside it
            checkpoint["epoch_in_progress"] = {"train_stats": self.train_stats.state_dict()}

    # ------------------------------------------------------------ optimizers
    def configure_optimizers(self) -> Any:
        if self.optimizer is None:
            raise RuntimeError("No optimizer is set: call handler.set_optimizer(...) first.")
        if self.scheduler is None:
            return self.optimizer
        config = {"scheduler": self.scheduler, "interval": "epoch", "frequency": 1}
        if isinstance(self.scheduler, _PLATEAU) and self.automatic_optimization:
            # Lightning requires a monitor for plateau schedulers; stepping is ours (below).
            config.update(monitor="loss", strict=False)
        return {"optimizer": self.optimizer, "lr_scheduler": config}

    @property
    def lr(self) -> float:
        """The optimizer's learning rate (first parameter group), where Lightning's tuner
        (``Tuner.lr_find``, the ``LearningRateFinder`` callback) reads it. Setting it scales
        every group's rate, and the scheduler's base rates, by the same factor."""
        if self.optimizer is None:
            raise AttributeError("lr: no optimizer is set (handler.set_optimizer(...)).")
        return float(self.optimizer.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        if self.optimizer is None:
            raise AttributeError("lr: no optimizer is set (handler.set_optimizer(...)).")
        scale_learning_rate(self.optimizer, self.scheduler, value)

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        """The handler's scheduler: nothing here, :meth:`step_scheduler` steps it once per epoch
        after the epoch logs are known. Another (the learning-rate finder's): stepped."""
        if scheduler is not self.scheduler:
            super().lr_scheduler_step(scheduler, metric)

    def step_scheduler(self, logs: dict[str, Any]) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, _PLATEAU):
            value = logs.get("val_loss", math.nan)
            self.scheduler.step(logs["loss"] if math.isnan(value) else value)
        else:
            self.scheduler.step()

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)  # automatic optimization only
        self.after_optimizer_step()

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        if self.steps is not None:
            self.steps.on_before_optimizer_step(optimizer)

    def after_optimizer_step(self) -> None:
        """Runs after every optimizer step (skipped or not): the EMA update."""
        if self.ema is not None:
            self.ema.update_parameters(self.model)
