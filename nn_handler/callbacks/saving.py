"""``nn_handler.callbacks.saving`` of the original's module map (re-exports ``ModelCheckpoint``)."""

from .model_checkpoint import ModelCheckpoint

__all__ = ["ModelCheckpoint"]
