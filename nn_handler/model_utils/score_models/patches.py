"""``nn_handler.model_utils.score_models.patches`` of the original's module map: ``patchify``
(random crops with coordinate grids), from :mod:`nn_handler.generative.patches`."""

from ...generative.patches import patchify

__all__ = ["patchify"]
