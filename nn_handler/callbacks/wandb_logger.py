"""``WandbLogger``: per-epoch values to Weights & Biases (optional dependency ``wandb``)."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import torch

from ._common import bare_module, is_rank_zero
from .base import Callback
from .tensorboard import epoch_scalars

__all__ = ["WandbLogger"]


def _import_wandb() -> Any:
    try:
        return importlib.import_module("wandb")
    except ImportError as err:
        raise ImportError(
            "WandbLogger needs the 'wandb' package, which is not installed: pip install wandb"
        ) from err


def _name(obj: Any) -> str:
    """A class's or function's name; an instance's class name (``nn.CrossEntropyLoss()``)."""
    return getattr(obj, "__name__", None) or type(obj).__name__


class WandbLogger(Callback):
    """Log the epoch logs to a Weights & Biases run (rank 0), step = epoch (1-based).

    Args:
        project: the W&B project.
        entity: the W&B user or team (default: yours).
        run_name: the run's display name.
        config: hyperparameters to record; by default the handler's model, optimizer, scheduler
            and loss settings.
        log_freq_epoch: log every N epochs.
        log_model_topology: ``wandb.watch`` the model (gradients and parameters).
        log_model_weights: also log the parameters' global L2 norm every
            ``log_weight_freq_epoch`` epochs as ``model_weight_L2_norm``.
        log_weight_freq_epoch: see ``log_model_weights``.

    Raises:
        ImportError: when ``wandb`` is not installed (``pip install wandb``).

    The run id is part of the callback's saved state, so a handler loaded from a checkpoint resumes
    the same W&B run.
    """

    def __init__(
        self,
        project: str,
        entity: str | None = None,
        run_name: str | None = None,
        config: dict[str, Any] | None = None,
        log_freq_epoch: int = 1,
        log_model_topology: bool = True,
        log_model_weights: bool = False,
        log_weight_freq_epoch: int = 10,
    ):
        super().__init__()
        self._wandb = _import_wandb()
        self.project = project
        self.entity = entity
        self.run_name = run_name
        self.config = config
        self.log_freq_epoch = max(int(log_freq_epoch), 1)
        self.log_model_topology = log_model_topology
        self.log_model_weights = log_model_weights
        self.log_weight_freq_epoch = max(int(log_weight_freq_epoch), 1)
        self.run: Any = None
        self.run_id: str | None = None

    def handler_config(self) -> dict[str, Any]:
        """The handler settings recorded when ``config`` is not given, with the original's keys:
        the model's keyword arguments, ``model_class``, ``model_type``, the optimizer's keyword
        arguments, ``optimizer_class``, the scheduler's, ``scheduler_class``, ``loss_fn`` and the
        loss's keyword arguments, ``device`` and ``seed`` (read from ``handler.setup``)."""
        h = self.handler
        if h is None:
            return {}
        setup = h.setup
        config: dict[str, Any] = dict(setup.model.kwargs)
        config["model_class"] = _name(setup.model.target)
        config["model_type"] = setup.model_type.name
        for key, component in (("optimizer", setup.optimizer), ("scheduler", setup.scheduler)):
            if component is not None:
                config.update(component.kwargs)
            config[f"{key}_class"] = _name(component.target) if component is not None else None
        loss = setup.loss
        config["loss_fn"] = _name(loss.fn) if loss is not None else None
        if loss is not None:
            config.update(loss.kwargs)
        config["device"] = str(h.device)
        config["seed"] = h.seed
        return config

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not is_rank_zero(self.handler) or self.run is not None:
            return
        self.run = self._wandb.init(
            project=self.project,
            entity=self.entity,
            name=self.run_name,
            config=self.config if self.config is not None else self.handler_config(),
            id=self.run_id,
            resume="allow",
        )
        self.run_id = getattr(self.run, "id", None)
        if self.log_model_topology and self.handler is not None:
            try:
                self._wandb.watch(bare_module(self.handler), log="all", log_freq=100)
            except Exception as err:  # noqa: BLE001 - topology is a nicety; logging goes on
                message = f"WandbLogger: wandb.watch failed ({err}); metrics are still logged."
                warnings.warn(message, RuntimeWarning, stacklevel=2)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.run is None:
            return
        step = epoch + 1
        if step % self.log_freq_epoch == 0:
            values: dict[str, Any] = epoch_scalars(logs or {})
            values["epoch"] = step
            self.run.log(values, step=step)
        if self.log_model_weights and step % self.log_weight_freq_epoch == 0:
            params = [p.detach() for p in bare_module(self.handler).parameters()]
            norm = float(torch.nn.utils.get_total_norm(params, norm_type=2.0)) if params else 0.0
            self.run.log({"model_weight_L2_norm": norm}, step=step)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None

    def state_dict(self) -> dict[str, Any]:
        return {"wandb_run_id": self.run_id}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.run_id = state_dict.get("wandb_run_id", self.run_id)
