"""``nn_handler.model_utils`` of the original's module map: the ``Sampler`` base class and the
score-based helpers (re-exports; see :mod:`nn_handler.sampler` and :mod:`nn_handler.generative`)."""

from ..sampler import Sampler

__all__ = ["Sampler"]
