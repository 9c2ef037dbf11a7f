"""``nn_handler.callbacks.training`` of the original's module map: callbacks that steer training
(re-exports)."""

from .early_stopping import EarlyStopping
from .param_scheduler import ParamScheduler

__all__ = ["EarlyStopping", "ParamScheduler"]
