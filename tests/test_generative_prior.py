"""The SDE prior convention of the original NNHandler and of ``score_models``.

``sde.prior(D)`` takes the shape ``D = x.shape[1:]`` of ONE sample: a batch is drawn with
``prior(D).sample([B])`` and ``prior(D).log_prob(x)`` of a batch ``(B, *D)`` is ``(B,)``. An SDE
written that way (not derived from the shipped classes) must sample and give log-likelihoods
that match the closed forms for Gaussian data, whose score is known exactly at every time.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal

from nn_handler import VESDE, VPSDE, NNHandler

pytestmark = pytest.mark.usefixtures("one_thread")

DATA_MEAN, DATA_STD = 0.5, 1.5


class ScoreModelsStyleVE:
    """A VE SDE as users of the original write it: the prior is over one sample of shape D."""

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 20.0, T: float = 1.0):
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self.T, self.epsilon = T, 1e-5

    def sigma(self, t):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** (t / self.T)

    def _expand(self, v, x):
        return v.reshape(-1, *[1] * (x.ndim - 1))

    def marginal_prob(self, t, x):
        return x, self._expand(self.sigma(t), x)

    def drift(self, t, x):
        return torch.zeros_like(x)

    def diffusion(self, t, x):
        rate = 2 * math.log(self.sigma_max / self.sigma_min) / self.T
        return self._expand(self.sigma(t) * math.sqrt(rate), x)

    def prior(self, shape, device="cpu"):
        shape = tuple(shape)
        mu = torch.zeros(shape, device=device)
        scale = self.sigma_max * torch.ones(shape, device=device)
        return Independent(Normal(mu, scale), len(shape))


class ExactScore(nn.Module):
    """``sigma(t) * score`` of ``N(DATA_MEAN, DATA_STD^2 I)`` perturbed by ScoreModelsStyleVE."""

    def __init__(self):
        super().__init__()
        self.sde = ScoreModelsStyleVE()
        self.w = nn.Parameter(torch.zeros(()))  # something for an optimizer to hold

    def forward(self, t, x):
        sigma = self.sde._expand(self.sde.sigma(t), x)
        return sigma * (-(x - DATA_MEAN) / (DATA_STD**2 + sigma**2)) + 0 * self.w


def gaussian_log_density(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(x.shape[0], -1)
    d = flat.shape[1]
    z = (flat - DATA_MEAN) / DATA_STD
    return -0.5 * z.pow(2).sum(1) - d * math.log(DATA_STD) - 0.5 * d * math.log(2 * math.pi)


def handler_with_original_style_sde() -> NNHandler:
    handler = NNHandler(ExactScore, model_type="score_based")
    handler.sde = ScoreModelsStyleVE()
    return handler


@pytest.mark.parametrize("sample_shape", [(2,), (1, 3, 3)])
def test_original_style_sde_samples_match_the_data_distribution(sample_shape):
    torch.manual_seed(0)
    handler = handler_with_original_style_sde()
    x = handler.sample((3000, *sample_shape), steps=200, bar=False)
    assert x.shape == (3000, *sample_shape) and torch.isfinite(x).all()
    flat = x.reshape(3000, -1)
    # Standard error of a mean over 3000 draws is 1.5 / 55 ~ 0.03; of a variance ~ 0.06.
    assert (flat.mean(0) - DATA_MEAN).abs().max() < 0.15, flat.mean(0)
    assert (flat.var(0) / DATA_STD**2 - 1).abs().max() < 0.12, flat.var(0)


@pytest.mark.parametrize("sample_shape", [(2,), (1, 3, 3)])
def test_original_style_sde_log_likelihood_matches_the_analytic_density(sample_shape):
    torch.manual_seed(1)
    handler = handler_with_original_style_sde()
    x = DATA_MEAN + DATA_STD * torch.randn(200, *sample_shape)
    ll = handler.log_likelihood(x, ode_steps=40, method="RK4")
    assert ll.shape == (200,)
    assert torch.allclose(ll, gaussian_log_density(x), rtol=0.02)


@pytest.mark.parametrize("sde", [VESDE(0.01, 20.0), VPSDE(0.1, 20.0)], ids=["ve", "vp"])
def test_shipped_sdes_follow_the_one_sample_convention(sde):
    prior = sde.prior((1, 4, 4))
    assert prior.event_shape == (1, 4, 4) and prior.batch_shape == ()
    draw = prior.sample([500])
    assert draw.shape == (500, 1, 4, 4)
    assert draw.std().item() == pytest.approx(sde.prior_std(), rel=0.05)
    log_prob = prior.log_prob(draw)
    std = sde.prior_std()
    expected = Normal(0.0, std).log_prob(draw).reshape(500, -1).sum(1)
    assert log_prob.shape == (500,) and torch.allclose(log_prob, expected, atol=1e-4)


class ScalarPrior(ScoreModelsStyleVE):
    """A prior whose log_prob sums the batch away: no per-sample likelihood can come from it."""

    def prior(self, shape, device="cpu"):
        base = super().prior(shape, device)

        class Summed:
            def sample(self, sample_shape):
                return base.sample(sample_shape)

            def log_prob(self, x):
                return base.log_prob(x).sum()

        return Summed()


class ShapeIgnoringPrior(ScoreModelsStyleVE):
    """A prior over a scalar whatever D is: its draws cannot have the requested shape."""

    def prior(self, shape, device="cpu"):
        return Normal(torch.zeros((), device=device), self.sigma_max)


def test_a_prior_breaking_the_convention_is_reported_by_name():
    handler = NNHandler(ExactScore, model_type="score_based")
    handler.sde = ScalarPrior()
    with pytest.raises(ValueError, match=r"prior\(\(2,\)\)\.log_prob\(x\).*must be \(5,\).*ONE"):
        handler.log_likelihood(torch.randn(5, 2), ode_steps=2)
    handler.sde = ShapeIgnoringPrior()
    shape_error = r"sample\(\[5\]\) returned shape \(5,\), expected \(5, 2\)"
    with pytest.raises(ValueError, match=shape_error):
        handler.sample((5, 2), steps=2, bar=False)
