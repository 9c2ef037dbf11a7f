"""Inference with a handler's model: ``predict`` over a loader."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from .._env.devices import to_cpu, to_device
from .._state.run_state import RunState
from .._state.runtime import Runtime
from .._state.setup import Setup
from ..utils._ordered_gather import batch_sizes, gather_predictions, shard_for_predict
from .batches import BatchReader, predict_outputs

__all__ = ["predict", "inference_model"]


def inference_model(runtime: Runtime, state: RunState, apply_ema: bool) -> torch.nn.Module:
    """The EMA weights when asked for and available, else the trained model."""
    if apply_ema and state.ema is not None:
        return state.ema.module
    return runtime.model


def predict(
    setup: Setup, state: RunState, runtime: Runtime, data_loader: Any, apply_ema: bool = True
) -> list[Any] | None:
    """Run the model in eval mode without gradients over ``data_loader``; outputs on the CPU."""
    if isinstance(data_loader, Dataset) and not isinstance(data_loader, DataLoader):
        data_loader = DataLoader(data_loader, batch_size=256)
    if not hasattr(data_loader, "__iter__"):
        raise TypeError(
            f"predict expects a DataLoader (or a Dataset), got {type(data_loader).__name__}."
        )
    dist = runtime.dist
    sharded = dist.distributed and _process_group_ready()
    if sharded:
        sizes = batch_sizes(data_loader, len(data_loader.dataset))
        data_loader = shard_for_predict(data_loader, dist.world_size, dist.rank)
    model = inference_model(runtime, state, apply_ema)
    reader = BatchReader(setup.model_type, runtime.module)
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with torch.no_grad():
            for batch in data_loader:
                batch = to_device(batch, runtime.device)
                outputs.append(to_cpu(predict_outputs(reader, model, batch)))
    finally:
        model.train(was_training)
    if sharded:
        # Every rank predicted its strided share; rank 0 gets all of it in dataset order.
        return gather_predictions(outputs, sizes, dist.world_size, dist.rank)
    return outputs


def _process_group_ready() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()
