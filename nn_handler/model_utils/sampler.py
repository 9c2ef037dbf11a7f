"""``nn_handler.model_utils.sampler`` of the original's module map (re-exports ``Sampler``)."""

from ..sampler import Sampler

__all__ = ["Sampler"]
