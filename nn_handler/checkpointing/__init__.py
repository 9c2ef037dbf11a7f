"""The original NNHandler's import path ``nn_handler.checkpointing``: re-exports only.

The original's checkpointing functions, on nn_handler's safe, atomic checkpoint format.
:mod:`.saving`: ``save_single_file``, ``save_multi_files``, ``save_multi_from_single``;
:mod:`.loading`: ``load``, ``initialize_from_checkpoint``; :mod:`.trainer_saving`:
``auto_save_epoch``. The format itself lives in :mod:`nn_handler.checkpoint`.
"""

from .loading import initialize_from_checkpoint, load
from .saving import save_multi_files, save_multi_from_single, save_single_file
from .trainer_saving import auto_save_epoch

__all__ = [
    "save_single_file",
    "save_multi_files",
    "save_multi_from_single",
    "load",
    "initialize_from_checkpoint",
    "auto_save_epoch",
]
