"""``nn_handler.model_utils.score_models.patch_score`` of the original's module map: the full
image's score from a patch model, from :mod:`nn_handler.generative.patches`."""

from ...generative.patches import make_pos_grid, patch_score_vectorized

__all__ = ["make_pos_grid", "patch_score_vectorized"]
