"""The auto-save rules: which epochs are saved, under which name; and ``auto_save_epoch``, the
decision and write for one finished epoch.

``NNHandler.train`` auto-saves through its Lightning callback (``adapters/hooks/autosaver.py``),
which applies these rules; :func:`auto_save_epoch` applies them for a script that runs its own
epoch loop (the original's ``nn_handler.checkpointing.trainer_saving.auto_save_epoch``).
"""

from __future__ import annotations

import numbers
import os
import string
import warnings
from collections.abc import Mapping
from typing import Any

from .._env.atomic import remove_quietly
from .._env.write_guard import checked_destination
from ..checkpoint import atomic_save, handler_state
from ..utils.ddp import on_rank

__all__ = ["auto_save_epoch", "auto_save_name", "should_auto_save"]


def should_auto_save(
    interval: int | None, epoch: int, last: bool, save_on_last_epoch: bool
) -> bool:
    """Whether 1-based global ``epoch`` is saved: every ``interval`` epochs, -1 → only the last
    epoch of a ``train`` call, and the last one too when ``save_on_last_epoch``."""
    if not interval:
        return False
    if interval > 0 and epoch % interval == 0:
        return True
    return last and (interval == -1 or save_on_last_epoch)


def _fallback_name(pattern: str, epoch: int) -> str:
    literal = "".join(text for text, *_ in string.Formatter().parse(pattern)).rstrip("_-. ")
    return f"{os.path.basename(literal) or 'model'}_epoch{epoch:02d}"


def auto_save_name(pattern: str, logs: dict[str, Any], epoch: int) -> str:
    """``pattern.format(**logs)`` with ``.pth`` appended: a file name, never a path.

    A missing key (or a formatted name that would leave the directory) warns and falls back to
    the pattern's literal text followed by ``_epoch<NN>``.
    """
    try:
        name = pattern.format(**logs)
        if os.path.basename(name) != name or name in ("", ".", ".."):
            raise ValueError(f"{name!r} is not a file name")
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as err:
        name = _fallback_name(pattern, epoch)
        warnings.warn(
            f"Auto-save name {pattern!r} cannot be formatted with the epoch logs "
            f"({type(err).__name__}: {err}; available keys: {sorted(logs)}); saving as "
            f"{name + '.pth'!r} instead.",
            UserWarning,
            stacklevel=2,
        )
    return name if name.endswith(".pth") else name + ".pth"


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
    return int(value)


@on_rank(0, barrier=True)
def auto_save_epoch(
    nn_handler: Any,
    epoch: int,
    total_epochs: int,
    save_on_last_epoch: bool,
    logs: Mapping[str, Any],
) -> str | None:
    """Save ``nn_handler`` after 0-based ``epoch`` if its ``auto_save`` settings say so.

    Saves after every ``save_interval``-th epoch (1-based), after the last epoch
    (``epoch + 1 == total_epochs``) when ``save_interval == -1`` or ``save_on_last_epoch``; the
    file name is ``save_model_name`` formatted with ``logs`` (``epoch`` 1-based, ``.pth``
    appended; a missing key warns and falls back to ``<name>_epochNN.pth``). With
    ``overwrite_last_saved`` the previous auto-save is removed after the new file is written.
    Rank 0 writes while the other ranks wait (every rank must call it). Returns the path written
    on rank 0, else ``None``.

    Raises:
        nn_handler._env.write_guard.DestinationRefused: settings loaded from a checkpoint point
            outside its folder and the working directory (after symlinks); nothing is written.
    """
    epoch = _check_int("epoch", epoch, 0)
    total_epochs = _check_int("total_epochs", total_epochs, 1)
    if not isinstance(logs, Mapping):
        raise TypeError(f"logs must be a dict, got {type(logs).__name__}.")
    number = epoch + 1
    last = number >= total_epochs
    if not should_auto_save(nn_handler.save_interval, number, last, bool(save_on_last_epoch)):
        return None
    values = {"epoch": number, **logs}
    name = auto_save_name(nn_handler.save_model_name, values, number)
    path = os.path.join(nn_handler.save_path, name)
    # Settings a loaded checkpoint brought back write only inside its folder or the working
    # directory (a symlink there may point elsewhere): refused, nothing written.
    checked_destination(path, nn_handler.setup.auto_save.write_roots, "an auto-save")
    saver = nn_handler.run_state.saver
    previous = saver.last_saved
    atomic_save({**handler_state(nn_handler), "auto_saved": True}, path)
    saver.record(path)
    saver.stamp(path)
    if nn_handler.overwrite_last_saved and previous:
        # As the AutoSaver: only the very file this process wrote, inside the save directory.
        if saver.may_delete(previous, path, nn_handler.save_path):
            remove_quietly(previous)
            saver.forget(previous)
    nn_handler.runtime.logger.info("Auto-saved checkpoint %s.", path)
    return path
