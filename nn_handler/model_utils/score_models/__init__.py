"""``nn_handler.model_utils.score_models`` of the original's module map.

The score-based toolkit lives in :mod:`nn_handler.generative`: ``VESDE``/``VPSDE``, the
``denoising_score_matching`` loss, and reverse-SDE sampling through ``NNHandler.sample``.
"""

from ...generative import VESDE, VPSDE
from .loss_fn import denoising_score_matching, denoising_score_matching_loss

__all__ = ["VESDE", "VPSDE", "denoising_score_matching", "denoising_score_matching_loss"]
