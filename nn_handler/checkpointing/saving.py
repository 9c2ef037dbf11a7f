"""The original NNHandler's import path ``nn_handler.checkpointing.saving``: re-exports only.

The functions live in :mod:`nn_handler._ops.state_files`.
"""

from .._ops.state_files import (
    DEFAULT_KEYS,
    part_path,
    save_multi_files,
    save_multi_from_single,
    save_single_file,
)

__all__ = [
    "DEFAULT_KEYS",
    "part_path",
    "save_single_file",
    "save_multi_files",
    "save_multi_from_single",
]
