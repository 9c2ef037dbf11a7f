"""NNHandler checkpoints: one safe, atomic file with the complete handler state (or a directory
with one file per key: the multi-file form).

Files are plain dicts that ``torch.load(path, weights_only=True)`` reads: classes and functions are
stored as import paths, never pickled. The same file carries the keys Lightning resumes from, so
``Trainer.fit(handler.to_lightning_module(), ckpt_path=path)`` continues it too.

The public names are imported on first use (PEP 562 module ``__getattr__``, as the package root
does), so that importing one of the package's small modules (``_format``, ``_read``) does not
load the whole reader and writer. Code inside nn_handler imports the defining module directly.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the submodule defining it
_EXPORTS: dict[str, str] = {
    "FORMAT_VERSION": "._format",
    "MANIFEST": "._format",
    "atomic_save": ".._env.atomic",
    "describe": "._read",
    "handler_checkpoint": "._state",
    "handler_state": "._save",
    "initialize_from_checkpoint": "._restore",
    "is_handler_checkpoint": "._read",
    "is_multi_file": "._multi",
    "lightning_keys": "._state",
    "load_handler": "._restore",
    "read_checkpoint": "._restore",
    "read_multi_file": "._multi",
    "restore_handler_extras": "._restore",
    "save_handler": "._save",
    "save_handler_files": "._save",
    "write_checkpoint": "._save",
    "write_multi_file": "._multi",
    "full_checkpoint": "._state",
}

__all__ = [name for name in _EXPORTS if name != "full_checkpoint"]


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
