"""Generative models: SDEs, the denoising score matching loss, sampling and likelihood."""

from .likelihood import probability_flow_log_likelihood
from .losses import (
    denoising_score_matching,
    patch_denoising_score_matching,
    patchify_denoising_score_matching,
)
from .metrics import sliced_wasserstein
from .patches import make_pos_grid, patch_score, patch_score_vectorized, patchify
from .sampling import reverse_sde_sample
from .sde import SDE, VESDE, VPSDE

__all__ = [
    "SDE",
    "VESDE",
    "VPSDE",
    "denoising_score_matching",
    "patch_denoising_score_matching",
    "patchify_denoising_score_matching",
    "patchify",
    "make_pos_grid",
    "patch_score",
    "patch_score_vectorized",
    "reverse_sde_sample",
    "probability_flow_log_likelihood",
    "sliced_wasserstein",
]
