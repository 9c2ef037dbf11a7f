"""What a loaded checkpoint may make happen only with the user's consent: the rules the field
codecs apply while they read a file (see :mod:`nn_handler._codecs.fields`).

How a name in a file becomes a class or function, and which modules it may come from, is decided
by :mod:`nn_handler._codecs.refs` and :mod:`nn_handler._codecs.paths`. This module holds the
rules about what is *done* with decoded values:

- saved model source runs only with ``trust_model_code=True`` (:func:`class_from_code`);
- a function and the arguments to call it with, both chosen by the file, form a ``partial`` that
  is rebuilt only with ``trust_checkpoint=True``, unless the function is a loss of torch's
  (:func:`check_loss_arguments`);
- a callback rebuilt from a file writes only where a loaded auto-save may
  (:func:`check_write_locations`, :func:`confine_writes`).
"""

from __future__ import annotations

import inspect
import textwrap
import types
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from .._env.write_guard import roots_for_checkpoint
from .._state.autosave import write_location_refused
from .paths import Unresolvable

__all__ = ["check_loss_arguments", "check_write_locations", "class_from_code", "confine_writes"]

# Loss functions a file may pass its own arguments to: torch's (tensors in, tensor out).
_LOSS_MODULES = ("torch.nn.functional",)

# Callback arguments that name where the callback writes.
_PATH_ARGUMENTS = ("filepath", "log_dir", "save_dir")


def class_from_code(code: str, stored: Any) -> type:
    """Execute saved model source (only with ``trust_model_code=True``) and take its class."""
    namespace = types.ModuleType("nn_handler_saved_model_code")
    namespace.__dict__.update(torch=torch, nn=nn, F=torch.nn.functional)
    exec(compile(textwrap.dedent(code), "<saved model code>", "exec"), namespace.__dict__)  # noqa: S102 - opt-in
    name = str(stored).rpartition(":")[2].rpartition(".")[2] if stored else None
    classes = [
        v
        for v in vars(namespace).values()
        if inspect.isclass(v) and issubclass(v, nn.Module) and v.__module__ == namespace.__name__
    ]
    for cls in classes:
        if name is None or cls.__name__ == name:
            return cls
    raise ValueError("The saved model code defines no nn.Module class.")


def _known_loss(fn: Any) -> bool:
    """A loss module (built from a kind-checked class) or a function of :data:`_LOSS_MODULES`."""
    return isinstance(fn, nn.Module) or getattr(fn, "__module__", None) in _LOSS_MODULES


def check_loss_arguments(fn: Callable[..., Any], kwargs: Mapping[str, Any], trust: bool) -> None:
    """Refuse (``Unresolvable``) a loss function named by the file together with arguments the
    file chose, unless the file is trusted or the function is one of torch's losses."""
    if kwargs and not trust and not _known_loss(fn):
        raise Unresolvable(
            f"the file names the function {getattr(fn, '__module__', '?')}."
            f"{getattr(fn, '__qualname__', fn)} and the arguments "
            f"{sorted(kwargs)} to call it with; trust_checkpoint=True rebuilds it"
        )


def check_write_locations(kwargs: Mapping[str, Any], checkpoint_file: str) -> None:
    """A callback rebuilt from a file writes only where a loaded auto-save may
    (``Unresolvable`` naming the argument otherwise)."""
    for name in _PATH_ARGUMENTS:
        value = kwargs.get(name)
        if isinstance(value, str):
            refused = write_location_refused(value, checkpoint_file)
            if refused:
                raise Unresolvable(
                    f"its {name} {refused}; pass the callback to load or use trust_checkpoint=True"
                )


def confine_writes(callback: Any, checkpoint_file: str) -> None:
    """Bind a native callback rebuilt from an untrusted file to the directories a loaded
    auto-save may write in: checked again at each write, after formatting and expansion."""
    callback.write_roots = roots_for_checkpoint(checkpoint_file)
