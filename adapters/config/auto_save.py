"""The CLI's ``model.auto_save`` group: ``NNHandler.auto_save``'s arguments as a dataclass
(exported by ``nn_handler.adapters.cli``, where the CLI module names it)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AutoSave"]


@dataclass
class AutoSave:
    """``NNHandler.auto_save``'s arguments (``interval``: N > 0 every N epochs, -1 last only;
    ``every_n_train_steps``: also every N optimizer steps, named ``step_name``)."""

    interval: int | None = None
    save_path: str = "."
    name: str = "model_epoch{epoch:02d}"
    overwrite: bool = False
    every_n_train_steps: int | None = None
    step_name: str = "model_step{step:08d}"
