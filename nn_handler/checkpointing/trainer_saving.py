"""Compatibility module: keeps the original's path ``nn_handler.checkpointing.trainer_saving``.

Re-exports only; :func:`auto_save_epoch` lives in ``nn_handler/_ops/auto_save.py``.
"""

from .._ops.auto_save import auto_save_epoch

__all__ = ["auto_save_epoch"]
