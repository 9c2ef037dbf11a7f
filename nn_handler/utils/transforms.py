"""``nn_handler.utils.transforms``: an affine rescaling usable as a model layer or a transform."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["Scaler"]


class Scaler(nn.Module):
    """Standardise with a fixed shift and scale: ``(x - m) / c``, or its inverse ``x * c + m``.

    Args:
        m: the shift (e.g. the data's mean); a number or a tensor broadcastable to ``x``.
        c: the scale (e.g. the data's standard deviation); same kinds as ``m``.
        inverse: apply ``x * c + m`` instead (undo a ``Scaler(m, c)``).
        *args, **kwargs: passed on to ``nn.Module``.

    ``m`` and ``c`` are plain attributes, not parameters or buffers: they are not trained and
    not part of ``state_dict()``.
    """

    def __init__(self, m: Any, c: Any, inverse: bool = False, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.m = m
        self.c = c
        self.inverse = inverse

    def forward(self, x: Any) -> Any:
        """``x * c + m`` when ``inverse``, else ``(x - m) / c``."""
        if self.inverse:
            return x * self.c + self.m
        return (x - self.m) / self.c
