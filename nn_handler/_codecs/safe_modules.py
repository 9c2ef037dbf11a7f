"""Which modules a checkpoint may make nn_handler import.

Importing a module runs its top-level code, so a file must not choose what is imported. Without
``trust_checkpoint=True`` a class or function named by a file is looked up only in a module that
is already imported (in ``sys.modules``) or that lies under a safe name: ``torch``,
``torchmetrics``, ``lightning``, ``nn_handler``, what :func:`register_safe_modules` added for the
process, and what ``NNHandler.load(..., safe_modules=[...])`` adds for one load. A name covers
itself and its submodules.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterable, Iterator

__all__ = ["register_safe_modules", "importable", "loading_with", "import_refused"]

_BUILT_IN = ("torch", "torchmetrics", "lightning", "nn_handler")
_REGISTERED: set[str] = set()
# Names added for the load running in this context (thread, task): ``loading_with``.
_FOR_THIS_LOAD: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "nn_handler_safe_modules", default=()
)


def _checked(names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    out = []
    for name in names:
        parts = name.split(".") if isinstance(name, str) else [""]
        if not all(part.isidentifier() for part in parts):
            raise ValueError(f"{name!r} is not a module name (e.g. 'mymodels' or 'pkg.models').")
        out.append(name)
    return tuple(out)


def register_safe_modules(*names: str) -> None:
    """Let checkpoints loaded in this process import ``names`` (and their submodules).

    A checkpoint names its model, optimizer, loss... by import path. Without this (or
    ``trust_checkpoint=True``), ``NNHandler.load`` looks them up only in modules already imported
    and in ``torch``, ``torchmetrics``, ``lightning`` and ``nn_handler``::

        nn_handler.register_safe_modules("mymodels")
        handler = NNHandler.load("run.pth")  # may import mymodels.nets for "mymodels.nets:Net"

    Raises:
        ValueError: a name that is not a dotted module name.
    """
    _REGISTERED.update(_checked(names))


def _covered(module: str, names: Iterable[str]) -> bool:
    return any(module == n or module.startswith(n + ".") for n in names)


def importable(module: str) -> bool:
    """Whether a checkpoint may make ``module`` be looked up (imported if it is not yet)."""
    if module in sys.modules:
        return True
    return _covered(module, (*_BUILT_IN, *_REGISTERED, *_FOR_THIS_LOAD.get()))


@contextlib.contextmanager
def loading_with(names: Iterable[str] | None) -> Iterator[None]:
    """Add ``names`` to the safe modules for the block (one ``load`` call)."""
    token = _FOR_THIS_LOAD.set(_checked(names or ()))
    try:
        yield
    finally:
        _FOR_THIS_LOAD.reset(token)


def import_refused(path: str, module: str) -> str:
    """Why ``path`` is not looked up, and the three ways to allow it."""
    top = module.split(".", 1)[0]
    return (
        f"{path!r} needs the module {module!r}, which is not imported; a checkpoint does not "
        f"choose what is imported. Add `import {module}` before loading, pass the object "
        f"yourself, call nn_handler.register_safe_modules({top!r}) or load(..., "
        f"safe_modules=[{top!r}]), or trust_checkpoint=True if you trust this file"
    )
