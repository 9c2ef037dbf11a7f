"""The original's ``nn_handler.utils.ddp_decorators``; the code is in ``nn_handler.utils.ddp``."""

from .ddp import ParallelExecutor, on_rank, parallel_on_all_devices, parallelize_on_gpus

__all__ = ["on_rank", "parallel_on_all_devices", "parallelize_on_gpus", "ParallelExecutor"]
