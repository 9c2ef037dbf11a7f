"""Score-based generative models: SDEs, DSM loss, reverse-SDE sampling, likelihood, training.

Sampling and likelihood are checked against closed forms: for Gaussian data N(m, s^2 I) the
marginal of the shipped (linear) SDEs stays Gaussian, so the exact score is known at every t.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nn_handler import VESDE, VPSDE, NNHandler, denoising_score_matching
from nn_handler.generative import sliced_wasserstein
from nn_handler.generative.sde import broadcast_time

pytestmark = pytest.mark.usefixtures("one_thread")

VE_KW = {"sigma_min": 0.01, "sigma_max": 20.0}
VP_KW = {"beta_min": 0.1, "beta_max": 20.0}
SDES = {"ve": (VESDE, VE_KW), "vp": (VPSDE, VP_KW)}


class ExactGaussianScore(nn.Module):
    """``sigma(t) * score`` of the SDE marginal when the data is ``N(mean, std^2 I)``.

    ``shift`` is a parameter added to the mean, so EMA weights can be told apart.
    """

    def __init__(self, kind: str = "ve", mean: float = 0.0, std: float = 1.0, nan_below=None):
        super().__init__()
        cls, kw = SDES[kind]
        self.sde = cls(**kw)
        self.std = std
        self.nan_below = nan_below
        self.shift = nn.Parameter(torch.tensor(float(mean)))

    def forward(self, t: torch.Tensor, x: torch.Tensor, mean=None) -> torch.Tensor:
        mean = self.shift if mean is None else mean
        alpha, kernel_std = self.sde.marginal_prob(t, torch.ones_like(x))
        var = alpha**2 * self.std**2 + kernel_std**2
        out = broadcast_time(self.sde.sigma(t), x) * (-(x - alpha * mean) / var)
        if self.nan_below is not None and float(t[0]) < self.nan_below:
            out = out * float("nan")
        return out


class ZeroScore(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, t, x):
        return torch.zeros_like(x) + 0 * self.w


def gaussian_log_density(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    d = x.shape[1]
    z = (x - mean) / std
    return -0.5 * z.pow(2).sum(1) - d * math.log(std) - 0.5 * d * math.log(2 * math.pi)


def exact_handler(kind: str, mean: float = 0.0, std: float = 1.0, **kw) -> NNHandler:
    handler = NNHandler(
        ExactGaussianScore, model_type="score_based", kind=kind, mean=mean, std=std, **kw
    )
    cls, sde_kw = SDES[kind]
    handler.set_sde(cls, **sde_kw)
    return handler


def assert_gaussian(x: torch.Tensor, mean: float, std: float, cov_tol: float = 0.1) -> None:
    n = x.shape[0]
    assert torch.isfinite(x).all()
    se = std / math.sqrt(n)
    assert (x.mean(0) - mean).abs().max() < 4.5 * se, x.mean(0)
    cov = torch.cov(x.T)
    assert torch.allclose(torch.diag(cov), torch.full((x.shape[1],), std**2), rtol=cov_tol), cov
    assert (cov - torch.diag(torch.diag(cov))).abs().max() < cov_tol * std**2, cov


# ---------------------------------------------------------------------------- SDEs
def test_vesde_noise_scale_and_diffusion():
    sde = VESDE(0.01, 20.0, T=2.0)
    assert float(sde.sigma(torch.tensor(0.0))) == pytest.approx(0.01)
    assert float(sde.sigma(torch.tensor(2.0))) == pytest.approx(20.0)
    # g(t)^2 = d sigma(t)^2 / dt (so the marginal variance grows as sigma^2).
    t = torch.tensor([0.3, 1.1, 1.9], requires_grad=True)
    (dvar,) = torch.autograd.grad(sde.sigma(t).pow(2).sum(), t)
    x = torch.randn(3, 4)
    g = sde.diffusion(t.detach(), x)
    assert g.shape == (3, 1)
    assert torch.allclose(g.squeeze(1) ** 2, dvar, rtol=1e-4)
    assert torch.equal(sde.drift(t.detach(), x), torch.zeros_like(x))
    mean, std = sde.marginal_prob(t.detach(), x)
    assert torch.equal(mean, x) and torch.allclose(std.squeeze(1), sde.sigma(t.detach()))
    prior = sde.prior((3,))  # the shape of ONE sample
    draw = prior.sample([5000])
    assert draw.shape == (5000, 3)
    assert draw.std().item() == pytest.approx(20.0, rel=0.05)
    assert prior.log_prob(draw).shape == (5000,)
    assert sde.hparams == {"sigma_min": 0.01, "sigma_max": 20.0, "T": 2.0, "epsilon": 1e-5}


def test_vpsde_preserves_unit_variance_and_matches_its_drift():
    sde = VPSDE(0.1, 20.0)
    t = torch.linspace(0.05, 1.0, 7)
    alpha, std = sde.marginal_prob(t, torch.ones(7, 1))
    assert torch.allclose(alpha.pow(2) + std.pow(2), torch.ones(7, 1), atol=1e-6)
    assert torch.allclose(std.squeeze(1), sde.sigma(t))
    # d alpha / dt = -beta(t) alpha / 2 = the drift of the mean.
    tt = t.clone().requires_grad_(True)
    a = sde.marginal_prob(tt, torch.ones(7, 1))[0].squeeze(1)
    (da,) = torch.autograd.grad(a.sum(), tt)
    drift = sde.drift(t, a.detach().unsqueeze(1)).squeeze(1)
    assert torch.allclose(da, drift, rtol=1e-4)
    assert torch.allclose(sde.diffusion(t, torch.ones(7, 1)).squeeze(1) ** 2, sde.beta(t))
    assert sde.prior((2,)).sample([4000]).std().item() == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: VESDE(1.0, 0.5), "sigma_min .* smaller than sigma_max"),
        (lambda: VESDE(-1.0, 5.0), "sigma_min must be a positive number"),
        (lambda: VPSDE(20.0, 0.1), "beta_min .* must not exceed beta_max"),
        (lambda: VPSDE(0.1, 20.0, T=1.0, epsilon=2.0), "epsilon .* smaller than T"),
    ],
)
def test_sde_rejects_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ---------------------------------------------------------------------------- loss
def test_dsm_loss_zero_model_equals_dimension_and_exact_score_is_lower():
    torch.manual_seed(0)
    x = torch.randn(20000, 2)
    sde = VESDE(**VE_KW)
    zero = denoising_score_matching(x, sde, ZeroScore(), "cpu")
    # Predicting 0, the loss is E|z|^2 = dimension.
    assert zero.ndim == 0 and zero.item() == pytest.approx(2.0, rel=0.03)
    exact = denoising_score_matching(x, sde, ExactGaussianScore("ve"), "cpu")
    assert exact.item() < 0.8 * zero.item()
    seen = []

    def recording(t, xt):
        seen.append(t)
        return torch.zeros_like(xt)

    denoising_score_matching(x[:64], sde, recording, None)
    assert seen[0].shape == (64,)
    assert seen[0].min() >= sde.epsilon and seen[0].max() <= sde.T


def test_dsm_loss_rejects_non_tensor_batches():
    with pytest.raises(TypeError, match="batch as a tensor"):
        denoising_score_matching([torch.randn(4, 2)], VESDE(**VE_KW), ZeroScore(), "cpu")
    with pytest.raises(ValueError, match=r"reshape 1-D data to \(B, 1\)"):
        denoising_score_matching(torch.randn(4), VESDE(**VE_KW), ZeroScore(), "cpu")


# ------------------------------------------------------------------------ sampling
@pytest.mark.parametrize(
    ("kind", "mean", "std", "corrector_steps"),
    # Every target differs from its SDE's prior (VP: N(0, I); VE: N(0, 20^2 I)), so returning
    # the prior draw without integrating fails each case.
    [("ve", 0.0, 1.0, 0), ("vp", 1.0, 0.5, 0), ("ve", 0.0, 1.0, 1), ("vp", 0.5, 2.0, 1)],
)
def test_sample_with_exact_score_matches_the_data_distribution(kind, mean, std, corrector_steps):
    torch.manual_seed(1)
    handler = exact_handler(kind, mean, std)
    x = handler.sample((4000, 2), steps=150, corrector_steps=corrector_steps, bar=False)
    assert x.shape == (4000, 2)
    assert_gaussian(x, mean, std)


def test_on_step_called_each_step_with_decreasing_time():
    handler = exact_handler("ve")
    calls = []
    out = handler.sample(
        (16, 2), steps=12, bar=False, on_step=lambda i, t, x: calls.append((i, t, x.clone()))
    )
    assert [c[0] for c in calls] == list(range(12))
    times = [c[1] for c in calls]
    assert all(a > b for a, b in zip(times, times[1:]))
    assert times[-1] == pytest.approx(handler.sde.epsilon)
    assert torch.equal(calls[-1][2], out)


@pytest.mark.parametrize("corrector_steps", [0, 2])
def test_stop_on_nan_stops_and_returns_last_finite_samples(corrector_steps):
    torch.manual_seed(2)
    handler = exact_handler("ve", nan_below=0.52)
    steps = []
    with pytest.warns(RuntimeWarning, match="NaN/inf at step 10"):
        x = handler.sample(
            (32, 2),
            steps=20,
            corrector_steps=corrector_steps,
            bar=False,
            on_step=lambda i, t, x: steps.append(i),
        )
    assert steps == list(range(10))  # steps 0..9 start at t >= 0.55; step 10 at t = 0.5
    assert torch.isfinite(x).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = handler.sample((32, 2), steps=20, bar=False, stop_on_NaN=False)
    assert torch.isnan(y).all()


def test_condition_is_passed_to_the_model():
    torch.manual_seed(3)
    handler = exact_handler("vp")
    target = torch.tensor([2.0, -1.0])
    x = handler.sample((3000, 2), steps=100, condition=target, bar=False)
    assert_gaussian(x - target, 0.0, 1.0)
    y = handler.sample((3000, 2), steps=100, condition=[target.expand(3000, 2)], bar=False)
    assert_gaussian(y - target, 0.0, 1.0)


def test_likelihood_score_guidance_adds_a_gradient_based_score():
    torch.manual_seed(4)
    handler = NNHandler(ZeroScore, model_type="score_based")
    handler.set_sde(VPSDE, **VP_KW)
    calls = []

    def data_score(t, x):
        # Score of the VP marginal of N(1, I) data, computed with autograd: needs grad enabled.
        calls.append(t.shape)
        x = x.requires_grad_(True)
        alpha = handler.sde.marginal_prob(t, torch.ones_like(x))[0]
        log_p = -0.5 * (x - alpha).pow(2).sum()
        return torch.autograd.grad(log_p, x)[0]

    x = handler.sample((3000, 2), steps=100, likelihood_score_fn=data_score, bar=False)
    assert calls[0] == (3000,)
    assert_gaussian(x, 1.0, 1.0)
    half = handler.sample(
        (3000, 2), steps=100, likelihood_score_fn=data_score, guidance_factor=0.5, bar=False
    )
    assert torch.cov(half.T).diag().min() > 1.5  # half the score: a broader distribution


def test_apply_ema_samples_with_the_averaged_weights():
    torch.manual_seed(5)
    handler = exact_handler("vp")
    handler.run_state.ensure_ema(handler.module, 0.5, handler.device)
    with torch.no_grad():
        handler.ema.module.shift.fill_(3.0)
    assert_gaussian(handler.sample((2000, 2), steps=80, bar=False), 3.0, 1.0)
    assert_gaussian(handler.sample((2000, 2), steps=80, bar=False, apply_ema=False), 0.0, 1.0)


def test_sampling_leaves_no_graph_and_restores_train_mode():
    handler = exact_handler("ve")
    handler.module.train()
    x = handler.sample((8, 2), steps=5, bar=False)
    assert not x.requires_grad
    assert handler.module.training


def test_sample_and_get_samples_only_on_rank_zero(monkeypatch):
    handler = exact_handler("ve")
    monkeypatch.setattr(handler.runtime, "dist", dataclasses.replace(handler.runtime.dist, rank=1))
    assert handler.sample((8, 2), steps=5, bar=False) is None
    assert handler.get_samples(4) is None


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda h: h.sample(8, steps=5), ValueError, "shape must be a sequence"),
        (lambda h: h.sample((8,), steps=5), ValueError, "batch and data dimensions"),
        (lambda h: h.sample((8, 2), steps=0), ValueError, "steps must be an integer >= 1"),
        (lambda h: h.sample((8, 2), 5, corrector_steps=-1), ValueError, "corrector_steps"),
        (
            lambda h: h.log_likelihood(torch.randn(4, 2), ode_steps=5, method="leapfrog"),
            ValueError,
            "Unknown method 'leapfrog'; choose one of euler, heun, rk4",
        ),
        (
            lambda h: h.log_likelihood(torch.randn(4, 2), ode_steps=5, noise_type="uniform"),
            ValueError,
            "Unknown noise_type",
        ),
        (lambda h: h.log_likelihood(torch.randn(4, 2), ode_steps=0), ValueError, "ode_steps"),
        (
            lambda h: h.log_likelihood(torch.randn(4, 2), ode_steps=5, t0=1.0, t1=0.5),
            ValueError,
            "t0 .* smaller than t1",
        ),
    ],
)
def test_bad_sampling_and_likelihood_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(exact_handler("ve"))


# ------------------------------------------------------------------------- score
def test_score_divides_the_model_output_by_sigma():
    handler = exact_handler("ve", mean=0.0, std=1.0)
    x = torch.randn(5, 2)
    t = torch.full((5,), 0.4)
    var = 1.0 + handler.sde.sigma(t).pow(2)[:, None]
    assert torch.allclose(handler.score(t, x), -x / var, rtol=1e-4)
    assert torch.allclose(handler.score(0.4, x), -x / var, rtol=1e-4)
    shifted = handler.score(t, x, torch.tensor([1.0, 1.0]))
    assert torch.allclose(shifted, -(x - 1.0) / var, rtol=1e-4)


def test_score_sample_and_likelihood_need_an_sde():
    handler = NNHandler(ZeroScore, model_type="score_based")
    for call in (
        lambda: handler.score(0.5, torch.randn(2, 2)),
        lambda: handler.sample((2, 2), 3),
        lambda: handler.log_likelihood(torch.randn(2, 2), ode_steps=3),
    ):
        with pytest.raises(RuntimeError, match=r"needs an SDE: call handler.set_sde"):
            call()


# ----------------------------------------------------------------------- SDE API
class DuckVE:
    """A VE SDE written without the shipped base class; its prior takes no device."""

    def __init__(self):
        self._inner = VESDE(**VE_KW)
        self.T, self.epsilon = 1.0, 1e-5

    def sigma(self, t):
        return self._inner.sigma(t)

    def marginal_prob(self, t, x):
        return self._inner.marginal_prob(t, x)

    def drift(self, t, x):
        return self._inner.drift(t, x)

    def diffusion(self, t, x):
        return self._inner.diffusion(t, x)

    def prior(self, shape):
        return torch.distributions.Normal(torch.zeros(shape), 20.0)


def test_a_duck_typed_sde_works_for_sampling_and_likelihood():
    torch.manual_seed(6)
    handler = exact_handler("ve")
    duck = DuckVE()
    handler.sde = duck
    assert (
        handler.sde is duck
        and handler.setup.sde.target is DuckVE
        and handler.setup.sde.kwargs == {}
    )
    assert_gaussian(handler.sample((3000, 2), steps=150, bar=False), 0.0, 1.0)
    x = torch.randn(200, 2)
    ll = handler.log_likelihood(x, ode_steps=40, method="RK4")
    assert torch.allclose(ll, gaussian_log_density(x, 0.0, 1.0), rtol=0.02)


def test_set_sde_and_sde_property_keep_class_and_kwargs():
    handler = NNHandler(ZeroScore, model_type="score_based")
    handler.set_sde(VPSDE, beta_min=0.2, beta_max=10.0)
    assert isinstance(handler.sde, VPSDE) and handler.sde.beta_max == 10.0
    assert (handler.setup.sde.target, handler.setup.sde.kwargs) == (
        VPSDE,
        {"beta_min": 0.2, "beta_max": 10.0},
    )
    handler.sde = VESDE(0.1, 5.0, T=2.0)
    assert handler.setup.sde.target is VESDE
    assert handler.setup.sde.kwargs == {
        "sigma_min": 0.1,
        "sigma_max": 5.0,
        "T": 2.0,
        "epsilon": 1e-5,
    }
    handler.sde = None
    assert handler.sde is None and handler.setup.sde is None


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda h: h.set_sde(VESDE(0.1, 5.0)), r"expects an SDE class .* handler.sde = obj"),
        (lambda h: h.set_sde(VESDE, sigma=3), "Could not build VESDE"),
        (lambda h: setattr(h, "sde", object()), "lacks T, epsilon, sigma"),
        (lambda h: setattr(h, "sde", VESDE), "use handler.set_sde"),
    ],
)
def test_bad_sde_configuration(call, match):
    with pytest.raises(TypeError, match=match):
        call(NNHandler(ZeroScore, model_type="score_based"))


# -------------------------------------------------------------------- likelihood
@pytest.mark.parametrize(
    ("kind", "mean", "std", "method", "steps"),
    [
        ("ve", 0.0, 1.0, "RK4", 40),
        ("ve", 0.0, 1.0, "Heun", 100),
        ("ve", 0.0, 1.0, "Euler", 1000),
        ("vp", 0.0, 1.0, "Euler", 200),
        ("vp", 0.5, 2.0, "Euler", 200),
    ],
)
def test_log_likelihood_matches_the_analytic_density(kind, mean, std, method, steps):
    torch.manual_seed(7)
    handler = exact_handler(kind, mean, std)
    x = mean + std * torch.randn(200, 2)
    ll = handler.log_likelihood(x, ode_steps=steps, method=method)
    assert ll.shape == (200,) and not ll.requires_grad
    assert torch.allclose(ll, gaussian_log_density(x, mean, std), rtol=0.02)


def test_log_likelihood_with_gaussian_probes_is_unbiased():
    torch.manual_seed(8)
    handler = exact_handler("ve")
    x = torch.randn(2000, 2)
    ll = handler.log_likelihood(
        x, ode_steps=50, method="rk4", noise_type="gaussian", n_cotangent_vectors=4
    )
    exact = gaussian_log_density(x, 0.0, 1.0)
    assert ll.mean().item() == pytest.approx(exact.mean().item(), rel=0.02)
    assert not torch.allclose(ll, exact, rtol=0.02)  # per sample, Gaussian probes are noisy


def test_log_likelihood_passes_args_and_restricts_the_interval():
    torch.manual_seed(9)
    handler = exact_handler("vp")
    x = torch.randn(100, 2) + 1.5
    shifted = handler.log_likelihood(x, torch.tensor([1.5, 1.5]), ode_steps=100, method="Heun")
    assert torch.allclose(shifted, gaussian_log_density(x, 1.5, 1.0), rtol=0.02)
    # Stopping at t1 < T ends at the marginal p_t1, not at the prior: the estimate is then off.
    y = torch.randn(100, 2)
    partial = handler.log_likelihood(y, torch.tensor([1.5, 1.5]), ode_steps=50, t1=0.2)
    assert (partial - gaussian_log_density(y, 1.5, 1.0)).abs().mean() > 0.5


# ---------------------------------------------------------------------- training
class TinyScoreNet(nn.Module):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(3, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, t, x):
        return self.net(torch.cat([x, t[:, None]], dim=1))


def test_short_training_lowers_the_loss_and_brings_samples_to_the_data():
    torch.manual_seed(10)
    centers = torch.tensor([[3.0, 0.0], [3.0, 3.0]])
    data = centers[torch.randint(0, 2, (2048,))] + 0.3 * torch.randn(2048, 2)
    held_out = centers[torch.randint(0, 2, (1000,))] + 0.3 * torch.randn(1000, 2)
    handler = NNHandler(TinyScoreNet, model_type="score_based")
    handler.set_sde(VPSDE, **VP_KW)
    handler.set_loss_fn(denoising_score_matching)
    handler.set_optimizer(torch.optim.Adam, lr=5e-3)
    handler.set_train_loader(TensorDataset(data), batch_size=64, shuffle=True)
    handler.train(8, progress_bar=False, seed=0)
    losses = handler.train_losses
    assert len(losses) == 8 and losses[-1] < 0.6 * losses[0]
    samples = handler.sample((1000, 2), steps=100, bar=False)
    g = torch.Generator().manual_seed(0)
    trained = sliced_wasserstein(samples, held_out, generator=g)
    prior = sliced_wasserstein(handler.sde.prior((2,)).sample([1000]), held_out, generator=g)
    # Typically 0.33 against 2.5: the samples have moved onto the two modes.
    assert trained < 0.3 * prior, (trained, prior)


def test_sliced_wasserstein_is_zero_for_equal_sets_and_grows_with_shift():
    a = torch.randn(500, 2)
    assert sliced_wasserstein(a, a) == pytest.approx(0.0, abs=1e-9)
    near = sliced_wasserstein(a, a + 0.1)
    far = sliced_wasserstein(a, a + 2.0)
    assert 0 < near < far
    with pytest.raises(ValueError, match="differ in dimension"):
        sliced_wasserstein(a, torch.randn(10, 3))


def test_the_last_step_adds_no_noise():
    """The last step returns the denoised mean. With a zero score and the VE SDE (no drift) the
    mean does not move, so the samples are exactly the state the step before reached."""
    handler = NNHandler(ZeroScore, model_type="score_based")
    handler.set_sde(VESDE, **VE_KW)
    states = []
    out = handler.sample(
        (64, 2), steps=4, bar=False, on_step=lambda i, t, x: states.append(x.clone())
    )
    assert len(states) == 4
    assert not torch.equal(states[1], states[0])  # the steps before the last add noise
    assert torch.equal(out, states[2])
