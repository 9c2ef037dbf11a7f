"""The live objects built from a setup: model, optimizer, scheduler, SDE, sampler, logger."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._env.dist_env import DistEnv
from .component import Component

__all__ = [
    "Runtime",
    "build_model",
    "build_optimizer",
    "build_sampler",
    "build_scheduler",
    "build_sde",
]


@dataclass
class Runtime:
    """What this process built from the setup (never written as such; state goes to checkpoints).

    Attributes:
        dist: this process's place in a distributed job.
        device: where the model lives (per rank under DDP).
        logger: the handler's Python logger (rank 0 writes).
        module: the bare model.
        compiled: ``torch.compile(module)`` after ``compile_model``, else ``None``.
        optimizer, scheduler, sde, sampler: built from their components (``None`` when unset).
        datamodule: the ``LightningDataModule`` given to ``set_datamodule`` (the training and
            validation data instead of the loaders), or ``None``. A live object of the user's,
            like the model: its ``state_dict`` goes into checkpoints, the object does not.
    """

    dist: DistEnv
    device: torch.device
    logger: logging.Logger
    module: nn.Module
    compiled: nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: Any = None
    sde: Any = None
    sampler: Any = None
    datamodule: Any = None

    @property
    def model(self) -> nn.Module:
        """The model used for training and inference (compiled when asked)."""
        return self.compiled if self.compiled is not None else self.module


def _built(component: Component, *args: Any, **kwargs: Any) -> Any:
    try:
        return component.build(*args, **kwargs)
    except (TypeError, ValueError) as err:
        raise type(err)(
            f"Could not build {component.name} with kwargs {dict(component.kwargs)}: {err}"
        ) from err


def build_model(component: Component, device: torch.device) -> nn.Module:
    return _built(component).to(device)


def build_optimizer(component: Component, module: nn.Module) -> torch.optim.Optimizer:
    return _built(component, module.parameters())


def build_scheduler(component: Component, optimizer: torch.optim.Optimizer) -> Any:
    return _built(component, optimizer)


def build_sde(component: Component) -> Any:
    return _built(component)


def build_sampler(component: Component, module: nn.Module) -> Any:
    return _built(component, own_module=module)
