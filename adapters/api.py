"""What the core may call in the engine: the whole of it, in one list.

``NNHandler`` reaches Lightning only through :func:`nn_handler._engine.engine`, which imports this
module when a method that needs the engine first runs (``train``, ``find_lr``, ``add_callback``
of a Lightning callback, the exports). Nothing else of ``adapters/`` is imported by the core, so
``import nn_handler`` and building a handler load no Lightning. Every function here takes the
handler's parts (or the facade, for the exported module, which shares its objects).
"""

from __future__ import annotations

from .config.writer import write_config
from .export import to_datamodule, to_lightning_module
from .fit.lr_finder import check_not_a_finder, find_lr
from .fit.run import check_ready, run

__all__ = [
    "check_not_a_finder",
    "check_ready",
    "find_lr",
    "run",
    "to_datamodule",
    "to_lightning_module",
    "write_config",
]
