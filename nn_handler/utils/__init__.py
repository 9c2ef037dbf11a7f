"""DDP utilities: set-up, rank-restricted calls, per-GPU parallel calls, reductions, broadcasts.

Also the rest of the original's ``nn_handler.utils``: the enumerations, ``Scaler``,
``import_with_fallback``, and ``GradScaler``/``autocast`` (``torch.amp``'s) and
``ExponentialMovingAverage`` (``torch_ema``'s when it is installed, else the no-op stand-in of
:mod:`nn_handler.utils.dummy_classes`), the last three resolved on first use.
"""

from typing import Any

from .ddp import (  # noqa: F401 - the private helpers are the original's names here too
    _initialize_distributed,
    _resolve_device,
    _should_use_distributed,
    aggregate_loss,
    aggregate_metrics,
    broadcast_data,
    broadcast_if_ddp,
    initialize_ddp,
    on_rank,
    parallel_on_all_devices,
    parallelize_on_gpus,
)
from .enums import DataLoaderType, LoggingMode, ModelType
from .import_utils import import_with_fallback
from .transforms import Scaler

__all__ = [
    "initialize_ddp",
    "on_rank",
    "parallelize_on_gpus",
    "parallel_on_all_devices",
    "import_with_fallback",
    "aggregate_loss",
    "aggregate_metrics",
    "broadcast_data",
    "broadcast_if_ddp",
    "ModelType",
    "LoggingMode",
    "DataLoaderType",
    "Scaler",
]

# name -> (module, names imported together, the flag set with them)
_OPTIONAL = {
    "GradScaler": ("torch.amp", ("GradScaler", "autocast"), "_amp_available"),
    "autocast": ("torch.amp", ("GradScaler", "autocast"), "_amp_available"),
    "_amp_available": ("torch.amp", ("GradScaler", "autocast"), "_amp_available"),
    "ExponentialMovingAverage": ("torch_ema", ("ExponentialMovingAverage",), "_ema_available"),
    "_ema_available": ("torch_ema", ("ExponentialMovingAverage",), "_ema_available"),
}


def __getattr__(name: str) -> Any:
    # Resolved lazily: importing torch_ema (when installed) is not paid by `import nn_handler`.
    if name not in _OPTIONAL:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, names, flag = _OPTIONAL[name]
    objects, found = import_with_fallback(module, list(names))
    globals().update(zip(names, objects))
    globals()[flag] = found
    return globals()[name]
