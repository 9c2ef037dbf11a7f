"""Batch hooks of the handler's own Lightning callbacks, called once per batch in every mode.

With chunked steps (``train(steps_per_execution=K)``) Lightning calls batch hooks once per
Lightning step, that is once per chunk of up to K batches. The handler's own callbacks that
need every batch (the native-callback bridge, the batch progress bars) derive from
:class:`PerBatchHooks`: the chunked module calls their per-batch methods itself, and their
Lightning batch hooks do nothing while it does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BATCH_HOOKS", "PerBatchHooks", "per_batch_calls"]

#: The per-batch methods, in the order of a batch: train start/end, validation start/end.
BATCH_HOOKS = ("train_batch_started", "train_batch_ended", "val_batch_started", "val_batch_ended")


class PerBatchHooks:
    """Mixin for a handler callback whose batch work must run for every batch.

    Subclasses implement the methods :meth:`batch_hooks` names (signatures as Lightning's
    ``on_train_batch_start(trainer, pl_module, batch, batch_idx)`` and
    ``on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)``), and call them from
    their Lightning hooks only when ``pl_module.calls_batch_hooks`` is false.
    """

    def batch_hooks(self) -> tuple[str, ...]:
        """The names from :data:`BATCH_HOOKS` this callback needs called (none by default)."""
        return ()


def per_batch_calls(callbacks: list[Any]) -> dict[str, list[Any]]:
    """``hook name -> bound methods`` of the :class:`PerBatchHooks` among ``callbacks``."""
    calls: dict[str, list[Any]] = {name: [] for name in BATCH_HOOKS}
    for callback in callbacks:
        if isinstance(callback, PerBatchHooks):
            for name in callback.batch_hooks():
                calls[name].append(getattr(callback, name))
    return calls
