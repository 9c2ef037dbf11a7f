"""``auto_save_epoch``: the AutoSaver's decision and write for one finished epoch.

``NNHandler.train`` auto-saves through its Lightning callback
(``adapters/hooks/autosaver.py``); this function applies the same rules for a script that runs
its own epoch loop.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from typing import Any

from .._env.atomic import atomic_save, remove_quietly
from .._env.write_guard import checked_destination
from ..adapters.hooks.autosaver import auto_save_name, should_auto_save
from ..checkpoint._save import handler_state
from ..utils.ddp import on_rank

__all__ = ["auto_save_epoch"]


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
