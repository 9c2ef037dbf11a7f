"""``nn_handler.model_utils.score_models.loss_fn`` of the original's module map.

The losses live in :mod:`nn_handler.generative.losses`. ``denoising_score_matching_loss`` (the
name the original's pages use) is ``denoising_score_matching`` itself:
``loss(samples, sde, model, device)``, for ``ModelType.SCORE_BASED`` handlers with an SDE.
"""

from ...generative.losses import (
    denoising_score_matching,
    patch_denoising_score_matching,
    patchify_denoising_score_matching,
)

denoising_score_matching_loss = denoising_score_matching

__all__ = [
    "denoising_score_matching",
    "denoising_score_matching_loss",
    "patch_denoising_score_matching",
    "patchify_denoising_score_matching",
]
