"""``nn_handler.model_utils.score_models`` of the original's module map.

The score-based toolkit lives in :mod:`nn_handler.generative`: ``VESDE``/``VPSDE``, the
denoising score matching losses (whole images and patches), the patch helpers, and reverse-SDE
sampling through ``NNHandler.sample`` (``patch_size=``/``stride=`` for patch models).
"""

from ..._ops.missing import missing_names
from ...generative.sde import VESDE, VPSDE
from ...generative.time_grids import get_schedule_type, get_t_schedule
from .loss_fn import (
    denoising_score_matching,
    denoising_score_matching_loss,
    patch_denoising_score_matching,
    patchify_denoising_score_matching,
)
from .patch_score import make_pos_grid, patch_score_vectorized
from .sde_solver import _USE_SAMPLE

__all__ = [
    "VESDE",
    "VPSDE",
    "denoising_score_matching",
    "denoising_score_matching_loss",
    "patch_denoising_score_matching",
    "patchify_denoising_score_matching",
    "patch_score_vectorized",
    "make_pos_grid",
    "get_t_schedule",
    "get_schedule_type",
]

__getattr__ = missing_names(__name__, {"SdeSolver": _USE_SAMPLE})
