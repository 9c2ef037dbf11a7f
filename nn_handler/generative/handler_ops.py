"""The generative operations behind ``NNHandler``'s SDE, sampler, sampling and likelihood API."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from .._devices import resolve_device
from .._inference import inference_model
from ..sampler import Sampler
from ._utils import as_args, time_vector
from .likelihood import probability_flow_log_likelihood
from .sampling import reverse_sde_sample
from .sde import REQUIRED_SDE_MEMBERS, broadcast_time

if TYPE_CHECKING:  # pragma: no cover
    from ..handler import NNHandler

__all__ = [
    "set_sde",
    "assign_sde",
    "set_sampler",
    "assign_sampler",
    "get_samples",
    "score",
    "sample",
    "log_likelihood",
]

_SAMPLER_MEMBERS = ("sample", "save", "load")


# ------------------------------------------------------------------- SDE
def _check_sde(sde: Any) -> None:
    missing = [m for m in REQUIRED_SDE_MEMBERS if not hasattr(sde, m)]
    if missing:
        raise TypeError(
            f"{type(sde).__name__} is not usable as an SDE: it lacks {', '.join(missing)}. An SDE "
            "needs T, epsilon, sigma(t), marginal_prob(t, x), drift(t, x), diffusion(t, x) and "
            "prior(shape); see nn_handler.VESDE / nn_handler.VPSDE."
        )


def set_sde(handler: NNHandler, sde_class: type, **kwargs: Any) -> None:
    """Build ``sde_class(**kwargs)`` and use it; class and kwargs are kept for checkpoints."""
    if not inspect.isclass(sde_class):
        raise TypeError(
            f"set_sde expects an SDE class and its kwargs, got {type(sde_class).__name__}; "
            "to use an SDE object as it is, assign it: handler.sde = obj."
        )
    try:
        sde = sde_class(**kwargs)
    except TypeError as err:
        raise TypeError(
            f"Could not build {sde_class.__name__} with kwargs {kwargs}: {err}"
        ) from err
    _check_sde(sde)
    handler._sde, handler._sde_class, handler._sde_kwargs = sde, sde_class, dict(kwargs)


def assign_sde(handler: NNHandler, sde: Any) -> None:
    """Use an SDE object (``None`` removes it); its ``hparams`` (if any) become its kwargs."""
    if sde is None:
        handler._sde, handler._sde_class, handler._sde_kwargs = None, None, {}
        return
    if inspect.isclass(sde):
        raise TypeError(
            f"handler.sde expects an SDE object, got the class {sde.__name__}; "
            "use handler.set_sde(SDEClass, **kwargs)."
        )
    _check_sde(sde)
    kwargs = getattr(sde, "hparams", None)
    handler._sde, handler._sde_class = sde, type(sde)
    handler._sde_kwargs = dict(kwargs) if isinstance(kwargs, dict) else {}


def _require_sde(handler: NNHandler, what: str) -> Any:
    if handler._sde is None:
        raise RuntimeError(
            f"{what} needs an SDE: call handler.set_sde(VESDE, sigma_min=..., sigma_max=...) "
            "(or another SDE class) first."
        )
    return handler._sde


# --------------------------------------------------------------- Sampler
def _check_sampler(sampler: Any) -> None:
    if isinstance(sampler, Sampler):
        return
    missing = [m for m in _SAMPLER_MEMBERS if not callable(getattr(sampler, m, None))]
    if missing:
        raise TypeError(
            f"{type(sampler).__name__} is not a Sampler (it lacks {', '.join(missing)}); "
            "subclass nn_handler.Sampler and implement sample(N, device, **kwargs)."
        )


def _is_sampler_object(obj: Any) -> bool:
    return isinstance(obj, Sampler) or all(
        callable(getattr(obj, m, None)) for m in _SAMPLER_MEMBERS
    )


def set_sampler(handler: NNHandler, sampler_class: type, **kwargs: Any) -> None:
    """Build ``sampler_class(**kwargs)`` and use it for ``get_samples``.

    A sampler object with no kwargs is used as it is (the form of the original's model_utils
    pages), like ``handler.sampler = obj``.
    """
    if not inspect.isclass(sampler_class) and not kwargs and _is_sampler_object(sampler_class):
        assign_sampler(handler, sampler_class)
        return
    if not inspect.isclass(sampler_class):
        raise TypeError(
            "set_sampler expects a Sampler subclass and its kwargs, or a Sampler object alone, "
            f"got {type(sampler_class).__name__}"
            + (" with kwargs" if kwargs and _is_sampler_object(sampler_class) else "")
            + "."
        )
    if inspect.isabstract(sampler_class):
        abstract = ", ".join(sorted(getattr(sampler_class, "__abstractmethods__", ())))
        raise TypeError(f"{sampler_class.__name__} is abstract: implement {abstract}.")
    try:
        sampler = sampler_class(**kwargs)
    except TypeError as err:
        raise TypeError(
            f"Could not build {sampler_class.__name__} with kwargs {sorted(kwargs)}: {err}"
        ) from err
    _check_sampler(sampler)
    handler._sampler, handler._sampler_class = sampler, sampler_class
    handler._sampler_kwargs = dict(kwargs)


def assign_sampler(handler: NNHandler, sampler: Any) -> None:
    """Use a sampler object (``None`` removes it)."""
    if sampler is None:
        handler._sampler, handler._sampler_class, handler._sampler_kwargs = None, None, {}
        return
    if inspect.isclass(sampler):
        raise TypeError(
            f"handler.sampler expects a Sampler object, got the class {sampler.__name__}; "
            "use handler.set_sampler(SamplerClass, **kwargs)."
        )
    _check_sampler(sampler)
    handler._sampler, handler._sampler_class, handler._sampler_kwargs = sampler, type(sampler), {}


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return value


def get_samples(handler: NNHandler, N: int, device: str | torch.device | None = None) -> Any:
    """``sampler.sample(N, device)`` on rank 0 (``None`` on other ranks)."""
    if handler._rank != 0:
        return None
    if handler._sampler is None:
        raise RuntimeError("No sampler is set: call handler.set_sampler(SamplerClass, ...) first.")
    N = _positive_int("N", N)
    device = handler._device if device is None else resolve_device(device)
    return handler._sampler.sample(N, device)


# ----------------------------------------------------------- score-based
def _score_fn(
    model: Callable[..., torch.Tensor], sde: Any, args: tuple
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def score_fn(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return model(t, x, *args) / broadcast_time(sde.sigma(t), x)

    return score_fn


def score(handler: NNHandler, t: float | torch.Tensor, x: torch.Tensor, *args: Any) -> torch.Tensor:
    """``model(t, x, *args) / sigma(t)``; ``t`` is a scalar or a ``(B,)`` tensor."""
    sde = _require_sde(handler, "score()")
    t = time_vector(t, x)
    return _score_fn(handler.model, sde, args)(t, x)


def _to_device(value: Any, device: torch.device) -> Any:
    return value.to(device) if isinstance(value, torch.Tensor) else value


class _EvalMode:
    """Puts a module in eval mode for the duration of a block, then restores its mode."""

    def __init__(self, module: torch.nn.Module):
        self.module, self.was_training = module, module.training

    def __enter__(self) -> None:
        self.module.eval()

    def __exit__(self, *exc: Any) -> None:
        self.module.train(self.was_training)


def sample(
    handler: NNHandler,
    shape: Sequence[int] | None,
    steps: int | None,
    corrector_steps: int = 0,
    condition: Any = None,
    likelihood_score_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    guidance_factor: float = 1.0,
    apply_ema: bool = True,
    bar: bool = True,
    stop_on_NaN: bool = True,
    corrector_snr: float = 0.1,
    on_step: Callable[[int, float, torch.Tensor], Any] | None = None,
    N: int | None = None,
) -> torch.Tensor | None:
    """Samples of ``shape`` from the reverse SDE (rank 0; ``None`` on other ranks).

    ``condition`` (a tensor or a sequence of model arguments) is passed to the model after
    ``(t, x)``. See :func:`~nn_handler.generative.sampling.reverse_sde_sample`.
    ``sample(N=n)`` alone (the original's model_utils pages) is ``get_samples(n)``.
    """
    if N is not None and shape is None and steps is None:
        return get_samples(handler, N)
    if shape is None or steps is None or N is not None:
        raise TypeError(
            "sample() takes shape and steps (reverse-SDE sampling with the SDE set by set_sde), "
            "or N alone (the sampler set by set_sampler, as get_samples(N))."
        )
    if handler._rank != 0:
        return None
    sde = _require_sde(handler, "sample()")
    if isinstance(shape, int) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(
            f"shape must be a sequence of positive ints (batch, *data_shape), got {shape!r}."
        )
    if len(shape) < 2:
        raise ValueError(f"shape must include the batch and data dimensions, got {tuple(shape)}.")
    steps = _positive_int("steps", steps)
    corrector_steps = _positive_int("corrector_steps", corrector_steps, minimum=0)
    args = tuple(_to_device(a, handler._device) for a in as_args(condition))
    model = inference_model(handler, apply_ema)
    with _EvalMode(model):
        return reverse_sde_sample(
            _score_fn(model, sde, args),
            sde,
            tuple(shape),
            steps,
            handler._device,
            corrector_steps=corrector_steps,
            corrector_snr=float(corrector_snr),
            likelihood_score_fn=likelihood_score_fn,
            guidance_factor=float(guidance_factor),
            bar=bar,
            stop_on_NaN=stop_on_NaN,
            on_step=on_step,
        )


def log_likelihood(
    handler: NNHandler,
    x: torch.Tensor,
    *args: Any,
    ode_steps: int,
    n_cotangent_vectors: int = 1,
    noise_type: str = "rademacher",
    method: str = "Euler",
    t0: float | None = None,
    t1: float | None = None,
    apply_ema: bool = True,
    pbar: bool = False,
) -> torch.Tensor:
    """Per-sample ``log p(x)`` through the probability-flow ODE (Hutchinson trace estimator).

    See :func:`~nn_handler.generative.likelihood.probability_flow_log_likelihood`.
    """
    sde = _require_sde(handler, "log_likelihood()")
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise ValueError(
            "log_likelihood expects a tensor of shape (batch, *data_shape), got "
            f"{getattr(x, 'shape', type(x).__name__)}."
        )
    x = x.to(handler._device)
    args = tuple(_to_device(a, handler._device) for a in args)
    model = inference_model(handler, apply_ema)
    with _EvalMode(model):
        return probability_flow_log_likelihood(
            _score_fn(model, sde, args),
            sde,
            x,
            ode_steps,
            n_cotangent_vectors=n_cotangent_vectors,
            noise_type=noise_type,
            method=method,
            t0=t0,
            t1=t1,
            pbar=pbar,
        )
