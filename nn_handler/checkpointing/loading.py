"""The original NNHandler's import path ``nn_handler.checkpointing.loading``: re-exports only.

The functions live in :mod:`nn_handler._ops.load_calls`.
"""

from .._ops.load_calls import initialize_from_checkpoint, load

__all__ = ["load", "initialize_from_checkpoint"]
