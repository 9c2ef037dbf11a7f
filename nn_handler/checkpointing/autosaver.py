"""Where the original kept its AutoSaver: the rules and the saver, re-exported from their homes.

``NNHandler.auto_save(...)`` configures it; ``NNHandler.train`` runs it as the Lightning callback
:class:`~nn_handler.adapters.hooks.autosaver.AutoSaver`; :func:`auto_save_epoch` applies it by hand.
"""

from ..adapters.hooks.autosaver import AutoSaver, auto_save_name, should_auto_save
from .trainer_saving import auto_save_epoch

__all__ = ["AutoSaver", "auto_save_epoch", "auto_save_name", "should_auto_save"]
