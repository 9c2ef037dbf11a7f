"""Reading pickled checkpoints written by the original NNHandler (explicit, unsafe opt-in).

Such files pickle classes, functions and a loss object, so reading them runs the pickle machinery
with arbitrary imports: only for files from a trusted source. References to the original's package
(``src.nn_handler...``) are mapped onto ``nn_handler``.
"""

from __future__ import annotations

import importlib
import pickle
import types
from typing import Any

import torch

__all__ = ["read_legacy", "read_file_or_legacy"]

_ORIGINAL_PREFIXES = ("src.nn_handler", "nn_handler")
# Where a name of the original's package is looked up when its module path differs from ours.
_FALLBACK_MODULES = (
    "nn_handler",
    "nn_handler.callbacks",
    "nn_handler.enums",
    "nn_handler.sampler",
    "nn_handler.generative",
)


def _map_original(module: str, name: str) -> Any:
    target = module[len("src.") :] if module.startswith("src.") else module
    for candidate in (target, *_FALLBACK_MODULES):
        try:
            mod = importlib.import_module(candidate)
        except ImportError:
            continue
        obj: Any = mod
        try:
            for part in name.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return obj
    raise pickle.UnpicklingError(
        f"The legacy checkpoint references {module}.{name}, which has no counterpart in nn_handler."
    )


class _RemappingUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if any(module == p or module.startswith(p + ".") for p in _ORIGINAL_PREFIXES):
            return _map_original(module, name)
        return super().find_class(module, name)


_pickle_module = types.ModuleType("nn_handler_legacy_pickle")
_pickle_module.Unpickler = _RemappingUnpickler  # type: ignore[attr-defined]
_pickle_module.load = pickle.load  # type: ignore[attr-defined]
_pickle_module.__dict__["UnpicklingError"] = pickle.UnpicklingError


def read_legacy(path: str, map_location: Any) -> dict[str, Any]:
    """Unpickle an original NNHandler checkpoint (runs code from the file: trusted files only).

    Raises:
        ValueError: the file cannot be unpickled (e.g. a class it names cannot be imported).
    """
    try:
        obj = torch.load(
            path, map_location=map_location, weights_only=False, pickle_module=_pickle_module
        )
    except (pickle.UnpicklingError, ImportError, AttributeError, ModuleNotFoundError) as err:
        raise ValueError(
            f"Could not read the legacy checkpoint {path!r}: {err}. Make the modules it names "
            "importable (e.g. put their folder on sys.path)."
        ) from err
    except (RuntimeError, EOFError) as err:
        raise ValueError(f"{path!r} is truncated or corrupted: {err}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path!r} holds a {type(obj).__name__}, not an NNHandler checkpoint.")
    return obj


def read_file_or_legacy(path: str, map_location: Any, allow_legacy_pickle: bool) -> Any:
    """The object in ``path`` read safely; with ``allow_legacy_pickle`` a file that only the
    unsafe unpickler can read (an original NNHandler checkpoint) is read that way."""
    from . import _read

    try:
        return _read.read_file(path, map_location)
    except ValueError:
        if not allow_legacy_pickle:
            raise
    return read_legacy(path, map_location)
