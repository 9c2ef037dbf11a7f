"""The sampling bar's readout: the original's ``t=``/``sigma=``/``|x|=`` postfix, taken (one
host sync) only as often as tqdm redraws, and not at all without a bar."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from nn_handler import VESDE
from nn_handler.generative import sampling


def recording_bar(monkeypatch, mininterval: float) -> list[dict]:
    """Replace the sampler's tqdm by one that records each postfix it is given."""
    seen: list[dict] = []

    class Recording(tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "mininterval": mininterval})

        def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
            seen.append(dict(ordered_dict))
            super().set_postfix(ordered_dict, refresh=refresh, **kwargs)

    monkeypatch.setattr(sampling, "tqdm", Recording)
    return seen


def sample(bar: bool, steps: int = 5) -> tuple[torch.Tensor, VESDE]:
    torch.manual_seed(0)
    sde = VESDE(0.01, 10.0)
    score = lambda t, x: -x / (1 + sde.sigma(t)[:, None] ** 2)  # noqa: E731 - N(0, I) data
    x = sampling.reverse_sde_sample(score, sde, (8, 2), steps, torch.device("cpu"), bar=bar)
    return x, sde


def test_each_redraw_shows_t_sigma_and_mean_abs_x(monkeypatch):
    seen = recording_bar(monkeypatch, mininterval=0)  # tqdm redraws every step
    x, sde = sample(bar=True)
    times = torch.linspace(1.0, 1e-5, 6, dtype=torch.float64).tolist()
    assert [p["t"] for p in seen] == [f"{t:.3f}" for t in times[:5]]  # the time each step began
    last_sigma = sde.sigma(torch.tensor([times[4]], dtype=torch.float32))[0]
    assert seen[-1]["sigma"] == f"{float(last_sigma):.2e}"
    assert seen[-1]["|x|"] == f"{x.abs().mean().item():.2e}"  # the samples returned


def test_the_readout_waits_for_a_redraw(monkeypatch):
    seen = recording_bar(monkeypatch, mininterval=3600)
    sample(bar=True, steps=20)
    assert len(seen) == 2  # the first step (nothing shown yet) and the last, not 20


def test_no_bar_no_readout(monkeypatch):
    seen = recording_bar(monkeypatch, mininterval=0)
    sample(bar=False)
    assert seen == []
