"""``nn_handler.utils.ddp_helpers`` of the original's module map: reductions, broadcasts and
per-rank loaders (re-exports)."""

from .._ops.missing import missing_names
from .._state.data import _create_distributed_loader
from .ddp import aggregate_loss, aggregate_metrics, broadcast_data, broadcast_if_ddp

__all__ = [
    "aggregate_loss",
    "aggregate_metrics",
    "broadcast_data",
    "broadcast_if_ddp",
    "_create_distributed_loader",
]

__getattr__ = missing_names(
    __name__,
    {
        "_create_rank_cached_dataloader": "pass dataloader_type=DataLoaderType.RANK_CACHED "
        "(nn_handler.utils.enums) to handler.set_train_loader / set_val_loader.",
    },
)
