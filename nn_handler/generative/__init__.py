"""Generative models: SDEs, the denoising score matching loss, sampling and likelihood.

The public names are imported on first use (PEP 562 module ``__getattr__``), so that a
submodule imports its siblings without running every other one.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the submodule defining it (imported on first use, PEP 562)
_EXPORTS: dict[str, str] = {
    "SDE": ".sde",
    "VESDE": ".sde",
    "VPSDE": ".sde",
    "denoising_score_matching": ".losses",
    "patch_denoising_score_matching": ".losses",
    "patchify_denoising_score_matching": ".losses",
    "patchify": ".patches",
    "make_pos_grid": ".patches",
    "patch_score": ".patches",
    "patch_score_vectorized": ".patches",
    "reverse_sde_sample": ".sampling",
    "probability_flow_log_likelihood": ".likelihood",
    "sliced_wasserstein": ".metrics",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    else:  # a submodule not imported yet (``package.submodule`` after ``import package``)
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
