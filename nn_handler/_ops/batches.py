"""How a batch is read and the model and loss are called, per model type (SPEC §3.4)."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..enums import ModelType

__all__ = ["BatchReader", "batch_size_of", "predict_outputs"]


def batch_size_of(inputs: Any) -> int:
    """Number of samples in ``inputs`` (first dimension of the first tensor found)."""
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.ndim else 1
    if isinstance(inputs, dict):
        inputs = next(iter(inputs.values()), None)
    if isinstance(inputs, (list, tuple)) and inputs:
        return batch_size_of(inputs[0])
    try:
        return len(inputs)
    except TypeError:
        return 1


def _positional_names(fn: Callable) -> list[str] | None:
    """Names of ``fn``'s parameters after the first; None when it takes ``*args``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return named[1:]


class BatchReader:
    """Splits batches and runs the forward pass for one model.

    The forward signature is inspected once, not per batch.
    """

    def __init__(self, model_type: ModelType, module: nn.Module):
        self.model_type = model_type
        self._train_fn = self._training_override(module)
        self._extra_names = _positional_names(self._train_fn or module.forward)
        self._eval_extra_names = _positional_names(module.forward)
        self._warned_excess = False

    @staticmethod
    def _training_override(module: nn.Module) -> Callable | None:
        for name in ("train_fn", "training"):
            fn = getattr(module, name, None)
            if callable(fn) and not isinstance(fn, nn.Module):
                return fn
        return None

    def split(self, batch: Any) -> tuple[Any, Any, tuple]:
        """Return ``(inputs, targets, extra_items)`` for ``batch``."""
        is_seq = isinstance(batch, Sequence) and not isinstance(batch, (str, bytes))
        if self.model_type in (ModelType.CLASSIFICATION, ModelType.REGRESSION):
            if not is_seq or len(batch) < 2:
                raise ValueError(
                    f"A {self.model_type.value} batch must be a sequence "
                    "(inputs, targets, *extra); "
                    f"got {type(batch).__name__}"
                    + (f" of length {len(batch)}" if is_seq else "")
                    + ". Use a dataset that returns (x, y) pairs, e.g. TensorDataset(x, y), or "
                    "ModelType.GENERATIVE for inputs-only data."
                )
            return batch[0], batch[1], tuple(batch[2:])
        if is_seq:
            if not batch:
                raise ValueError("Received an empty batch.")
            inputs = batch[0]
            return inputs, inputs, tuple(batch[1:])
        return batch, batch, ()

    def _bind(self, extra: tuple, names: list[str] | None) -> tuple[tuple, dict]:
        if not extra:
            return (), {}
        if names is None:
            return extra, {}
        if len(extra) > len(names) and not self._warned_excess:
            self._warned_excess = True
            warnings.warn(
                f"The batch has {len(extra)} extra item(s) but forward accepts {len(names)} more "
                "parameter(s); the excess items are ignored.",
                UserWarning,
                stacklevel=3,
            )
        return (), dict(zip(names, extra))

    def forward(self, model: nn.Module, inputs: Any, extra: tuple, training: bool) -> Any:
        """Run the model (or its ``train_fn`` during training) on one batch."""
        if training and self._train_fn is not None:
            args, kwargs = self._bind(extra, self._extra_names)
            return self._train_fn(inputs, *args, **kwargs)
        args, kwargs = self._bind(extra, self._eval_extra_names)
        return model(inputs, *args, **kwargs)


def predict_outputs(reader: BatchReader, model: nn.Module, batch: Any) -> Any:
    """Model outputs for one inference batch; targets, if present, are ignored."""
    if isinstance(batch, (list, tuple)):
        if reader.model_type in (ModelType.CLASSIFICATION, ModelType.REGRESSION) and len(batch) < 2:
            return reader.forward(model, batch[0], (), training=False)
        inputs, _, extra = reader.split(batch)
        if reader.model_type in (ModelType.CLASSIFICATION, ModelType.REGRESSION):
            return reader.forward(model, inputs, extra, training=False)
        return reader.forward(model, inputs, (), training=False)
    return reader.forward(model, batch, (), training=False)
