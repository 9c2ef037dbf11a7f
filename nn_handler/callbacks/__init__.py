"""Native callbacks: the :class:`Callback` base class and the built-ins.

Imported on first use (PEP 562 module ``__getattr__``, as the package root does): a new
callback is added to ``_EXPORTS`` (name -> defining submodule).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Callback": ".base",
    "ModelCheckpoint": ".model_checkpoint",
    "EarlyStopping": ".early_stopping",
    "LearningRateMonitor": ".lr_monitor",
    "TensorBoardLogger": ".tensorboard",
    "EpochTimer": ".epoch_timer",
    "WandbLogger": ".wandb_logger",
    "SimpleGarbageCollector": ".garbage",
    "CudaGarbageCollector": ".garbage",
    "BasePredictionVisualizer": ".visualizers",
    "ImagePredictionVisualizer": ".visualizers",
    "ParamScheduler": ".param_scheduler",
    "ParameterNormMonitor": ".param_norm",
    "ProgressMonitor": ".progress",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
