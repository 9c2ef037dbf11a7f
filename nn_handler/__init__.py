"""nn_handler: a drop-in NNHandler training API for PyTorch, running on PyTorch Lightning.

The public names are imported on first use (PEP 562 module ``__getattr__``): ``import
nn_handler`` costs almost nothing, and ``from nn_handler import NNHandler`` imports what the
handler needs (torch; Lightning only when training starts). To add a public name, add it to
``_EXPORTS`` (name -> the submodule defining it); ``__all__`` is built from that table.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._env.fork_guard import install_fork_guard as _install_fork_guard
from ._version import __version__
from .callbacks import __all__ as _callbacks_all

# Loader workers are forked while backend threads enter Python: see nn_handler/_env/fork_guard.py.
_install_fork_guard()

_EXPORTS: dict[str, str] = {
    "NNHandler": ".handler",
    "Sampler": ".sampler",
    "ModelType": ".enums",
    "LoggingMode": ".enums",
    "DataLoaderType": ".utils",
    "initialize_logger": ".logger",
    "register_safe_modules": "._codecs.safe_modules",
    "initialize_ddp": ".utils",
    "on_rank": ".utils",
    "parallelize_on_gpus": ".utils",
    "VESDE": ".generative",
    "VPSDE": ".generative",
    "denoising_score_matching": ".generative",
    **dict.fromkeys(_callbacks_all, ".callbacks"),  # every callback is public at the top level
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    else:  # a submodule not imported yet (``nn_handler.utils`` after ``import nn_handler``)
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
