"""``nn_handler.model_utils.score_models.sde_solver`` of the original's module map.

nn_handler has no solver classes: reverse-SDE sampling is ``NNHandler.sample`` (and, without a
handler, :func:`nn_handler.generative.sampling.reverse_sde_sample`). Importing a solver class
from here raises an ``ImportError`` that says so.
"""

from ..._ops.missing import missing_names

__all__: list[str] = []

_USE_SAMPLE = (
    "sample with handler.sample(shape, steps, corrector_steps=0, ...) on a SCORE_BASED handler "
    "with an SDE (handler.set_sde(VESDE, sigma_min=..., sigma_max=...)): an Euler-Maruyama "
    "predictor with an optional Langevin corrector. Without a handler: "
    "nn_handler.generative.sampling.reverse_sde_sample(score_fn, sde, shape, steps, device). "
    "A custom sampling algorithm is a nn_handler.Sampler subclass (handler.set_sampler)."
)

__getattr__ = missing_names(
    __name__,
    {"SDESolver": _USE_SAMPLE, "EulerMaruyamaSolver": _USE_SAMPLE, "SdeSolver": _USE_SAMPLE},
)
