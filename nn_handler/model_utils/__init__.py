"""``nn_handler.model_utils`` of the original's module map: the ``Sampler`` base class, the
score-based helpers (re-exports; see :mod:`nn_handler.sampler` and :mod:`nn_handler.generative`)
and the epoch schedules of :mod:`nn_handler.model_utils.scheduler`.

The original's model zoo (``model_utils.autoencoders``) is not part of nn_handler."""

from ..sampler import Sampler

__all__ = ["Sampler"]
