"""The generative operations behind ``NNHandler``'s SDE, sampler, sampling and likelihood API."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .._env.devices import resolve_device
from .._ops.inference import inference_model
from .._state import runtime as _runtime
from .._state.component import Component
from .._state.run_state import RunState
from .._state.runtime import Runtime
from ..sampler import Sampler
from ._utils import as_args, time_vector
from .likelihood import probability_flow_log_likelihood
from .patches import check_patch_geometry, patch_score
from .sampling import reverse_sde_sample
from .sde import REQUIRED_SDE_MEMBERS, broadcast_time

__all__ = [
    "sde_component",
    "build_sde_checked",
    "assigned_sde",
    "sampler_component",
    "build_sampler_checked",
    "assigned_sampler",
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
            "prior(D) (D: the shape of one sample); see nn_handler.VESDE / nn_handler.VPSDE."
        )


def sde_component(sde_class: Any, kwargs: dict[str, Any]) -> Component:
    """``set_sde``'s arguments as a component (the class is checked, not yet built)."""
    if not inspect.isclass(sde_class):
        raise TypeError(
            f"set_sde expects an SDE class and its kwargs, got {type(sde_class).__name__}; "
            "to use an SDE object as it is, assign it: handler.sde = obj."
        )
    return Component(sde_class, kwargs)


def build_sde_checked(component: Component) -> Any:
    """The SDE ``component`` describes, checked to have what training and sampling call."""
    sde = _runtime.build_sde(component)
    _check_sde(sde)
    return sde


def assigned_sde(sde: Any) -> Component | None:
    """The component recorded for an SDE object assigned as it is (its ``hparams`` as kwargs)."""
    if sde is None:
        return None
    if inspect.isclass(sde):
        raise TypeError(
            f"handler.sde expects an SDE object, got the class {sde.__name__}; "
            "use handler.set_sde(SDEClass, **kwargs)."
        )
    _check_sde(sde)
    kwargs = getattr(sde, "hparams", None)
    return Component(type(sde), dict(kwargs) if isinstance(kwargs, dict) else {}, assigned=True)


def _require_sde(runtime: Runtime, what: str) -> Any:
    if runtime.sde is None:
        raise RuntimeError(
            f"{what} needs an SDE: call handler.set_sde(VESDE, sigma_min=..., sigma_max=...) "
            "(or another SDE class) first."
        )
    return runtime.sde


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


def is_sampler_object(obj: Any) -> bool:
    """A sampler instance (a ``Sampler``, or anything with ``sample``, ``save`` and ``load``)."""
    return not inspect.isclass(obj) and (
        isinstance(obj, Sampler) or all(callable(getattr(obj, m, None)) for m in _SAMPLER_MEMBERS)
    )


def sampler_component(sampler_class: Any, kwargs: dict[str, Any], module: Any) -> Component:
    """``set_sampler``'s arguments as a component; a kwarg that is ``module`` stays linked."""
    if not inspect.isclass(sampler_class):
        raise TypeError(
            "set_sampler expects a Sampler subclass and its kwargs, or a Sampler object alone, "
            f"got {type(sampler_class).__name__}"
            + (" with kwargs" if kwargs and is_sampler_object(sampler_class) else "")
            + "."
        )
    if inspect.isabstract(sampler_class):
        abstract = ", ".join(sorted(getattr(sampler_class, "__abstractmethods__", ())))
        raise TypeError(f"{sampler_class.__name__} is abstract: implement {abstract}.")
    return Component(sampler_class, kwargs).with_own_module(module)


def build_sampler_checked(component: Component, module: Any) -> Any:
    """The sampler ``component`` describes, built with the handler's ``module`` where linked."""
    sampler = _runtime.build_sampler(component, module)
    _check_sampler(sampler)
    return sampler


def assigned_sampler(sampler: Any) -> Component | None:
    """The component recorded for a sampler object assigned as it is."""
    if sampler is None:
        return None
    if inspect.isclass(sampler):
        raise TypeError(
            f"handler.sampler expects a Sampler object, got the class {sampler.__name__}; "
            "use handler.set_sampler(SamplerClass, **kwargs)."
        )
    _check_sampler(sampler)
    return Component(type(sampler), {}, assigned=True)


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return value


def get_samples(runtime: Runtime, N: int, device: str | torch.device | None = None) -> Any:
    """``sampler.sample(N, device)`` on rank 0 (``None`` on other ranks)."""
    if runtime.dist.rank != 0:
        return None
    if runtime.sampler is None:
        raise RuntimeError("No sampler is set: call handler.set_sampler(SamplerClass, ...) first.")
    N = _positive_int("N", N)
    device = runtime.device if device is None else resolve_device(device)
    return runtime.sampler.sample(N, device)


# ----------------------------------------------------------- score-based
def _score_fn(
    model: Callable[..., torch.Tensor], sde: Any, args: tuple
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def score_fn(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return model(t, x, *args) / broadcast_time(sde.sigma(t), x)

    return score_fn


def _patch_score_fn(
    model: Callable[..., torch.Tensor], sde: Any, args: tuple, patching: tuple[int, int, Any]
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The full image's score assembled from the model's scores of its patches."""

    def patch_model_score(t: torch.Tensor, x: torch.Tensor, *inputs: Any) -> torch.Tensor:
        return model(t, x, *inputs) / broadcast_time(sde.sigma(t), x)

    def score_fn(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return patch_score(patch_model_score, t, x, *patching, *args)

    return score_fn


def _takes_three_arguments(fn: Callable[..., Any]) -> bool:
    """Whether ``fn(t, x, score)`` is a valid call (the original's patch-mode signature)."""
    try:
        inspect.signature(fn).bind(None, None, None)
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): call it as documented, with (t, x)
        return False
    return True


def score(runtime: Runtime, t: float | torch.Tensor, x: torch.Tensor, *args: Any) -> torch.Tensor:
    """``model(t, x, *args) / sigma(t)``; ``t`` is a scalar or a ``(B,)`` tensor."""
    sde = _require_sde(runtime, "score()")
    t = time_vector(t, x)
    return _score_fn(runtime.model, sde, args)(t, x)


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
    runtime: Runtime,
    state: RunState,
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
    patch_size: int | None = None,
    stride: int | None = None,
    patch_chunk: int | None = None,
) -> torch.Tensor | None:
    """Samples of ``shape`` from the reverse SDE (rank 0; ``None`` on other ranks).

    ``condition`` (a tensor or a sequence of model arguments) is passed to the model after
    ``(t, x)``. See :func:`~nn_handler.generative.sampling.reverse_sde_sample`.

    With ``patch_size`` and ``stride`` the model is a patch model (trained with
    :func:`~nn_handler.generative.losses.patchify_denoising_score_matching`): the image's score
    is averaged from its sliding-window patches, each scored as ``model(t, patch, pos_grid,
    *condition) / sigma(t)`` (:func:`~nn_handler.generative.patches.patch_score`), at most
    ``patch_chunk`` window positions per model call. A ``likelihood_score_fn`` that takes three
    arguments then gets the score too: ``likelihood_score_fn(t, x, score)``.
    ``sample(N=n)`` alone (the original's model_utils pages) is ``get_samples(n)``.
    """
    if N is not None and shape is None and steps is None:
        return get_samples(runtime, N)
    if shape is None or steps is None or N is not None:
        raise TypeError(
            "sample() takes shape and steps (reverse-SDE sampling with the SDE set by set_sde), "
            "or N alone (the sampler set by set_sampler, as get_samples(N))."
        )
    if runtime.dist.rank != 0:
        return None
    sde = _require_sde(runtime, "sample()")
    if isinstance(shape, int) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(
            f"shape must be a sequence of positive ints (batch, *data_shape), got {shape!r}."
        )
    if len(shape) < 2:
        raise ValueError(f"shape must include the batch and data dimensions, got {tuple(shape)}.")
    steps = _positive_int("steps", steps)
    corrector_steps = _positive_int("corrector_steps", corrector_steps, minimum=0)
    patching = None
    if patch_size is not None or stride is not None:
        p, s = check_patch_geometry(tuple(shape), patch_size, stride)
        if patch_chunk is not None:
            patch_chunk = _positive_int("patch_chunk", patch_chunk)
        patching = (p, s, patch_chunk)
    elif patch_chunk is not None:
        raise ValueError("patch_chunk applies to patch-based sampling: give patch_size and stride.")
    args = tuple(_to_device(a, runtime.device) for a in as_args(condition))
    model = inference_model(runtime, state, apply_ema)
    if patching is None:
        score_fn = _score_fn(model, sde, args)
    else:
        score_fn = _patch_score_fn(model, sde, args, patching)
    with _EvalMode(model):
        return reverse_sde_sample(
            score_fn,
            sde,
            tuple(shape),
            steps,
            runtime.device,
            corrector_steps=corrector_steps,
            corrector_snr=float(corrector_snr),
            likelihood_score_fn=likelihood_score_fn,
            guidance_factor=float(guidance_factor),
            bar=bar,
            stop_on_NaN=stop_on_NaN,
            on_step=on_step,
            likelihood_with_score=(
                patching is not None
                and likelihood_score_fn is not None
                and _takes_three_arguments(likelihood_score_fn)
            ),
        )


def log_likelihood(
    runtime: Runtime,
    state: RunState,
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
    sde = _require_sde(runtime, "log_likelihood()")
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise ValueError(
            "log_likelihood expects a tensor of shape (batch, *data_shape), got "
            f"{getattr(x, 'shape', type(x).__name__)}."
        )
    x = x.to(runtime.device)
    args = tuple(_to_device(a, runtime.device) for a in args)
    model = inference_model(runtime, state, apply_ema)
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
