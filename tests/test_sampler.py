"""Custom ``Sampler``s on a handler, and SDE/sampler state through save and load."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nn_handler import VESDE, VPSDE, NNHandler, Sampler, denoising_score_matching


class Decoder(nn.Module):
    def __init__(self, latent: int = 3, out: int = 2):
        super().__init__()
        self.latent = latent
        self.lin = nn.Linear(latent, out)

    def forward(self, z):
        return self.lin(z)


class CountingSampler(Sampler):
    """Returns ``scale`` everywhere and counts what it has drawn (its saved state)."""

    def __init__(self, scale: float = 1.0, width: int = 2):
        self.scale, self.width, self.drawn = scale, width, 0

    def sample(self, N, device, **kwargs):
        self.drawn += N
        return torch.full((N, self.width), self.scale, device=device)

    def save(self):
        return {"drawn": self.drawn, "history": torch.arange(3)}

    def load(self, state):
        self.drawn = state["drawn"]
        self.loaded = state


class DecoderSampler(Sampler):
    """Decodes Gaussian latents with the handler's model (passed as a kwarg)."""

    def __init__(self, model: nn.Module, temperature: float = 1.0):
        self.model, self.temperature = model, temperature

    @torch.no_grad()
    def sample(self, N, device, **kwargs):
        z = self.temperature * torch.randn(N, self.model.latent, device=device)
        return self.model(z)

    def save(self):
        return {"temperature": self.temperature}

    def load(self, state):
        self.temperature = state["temperature"]


class NotASampler:
    def sample(self, N, device):
        return None


def test_set_sampler_builds_it_and_get_samples_uses_the_handler_device():
    handler = NNHandler(Decoder)
    handler.set_sampler(CountingSampler, scale=2.5, width=4)
    assert isinstance(handler.sampler, CountingSampler)
    assert handler.setup.sampler.target is CountingSampler
    assert handler.setup.sampler.kwargs == {"scale": 2.5, "width": 4}
    out = handler.get_samples(6)
    assert out.shape == (6, 4) and out.device == handler.device and torch.all(out == 2.5)
    assert handler.get_samples(2, device="cpu").shape == (2, 4)
    assert handler.sampler.drawn == 8


def test_sampler_property_accepts_an_instance_and_none():
    handler = NNHandler(Decoder)
    sampler = CountingSampler(scale=-1.0)
    handler.sampler = sampler
    assert handler.sampler is sampler and handler.setup.sampler.target is CountingSampler
    assert torch.all(handler.get_samples(3) == -1.0)
    handler.sampler = None
    assert handler.sampler is None and handler.setup.sampler is None
    with pytest.raises(RuntimeError, match=r"No sampler is set: call handler.set_sampler"):
        handler.get_samples(3)


def test_sample_save_and_load_are_all_abstract():
    assert Sampler.__abstractmethods__ == frozenset({"sample", "save", "load"})

    class OnlySample(Sampler):
        def sample(self, N, device, **kwargs):
            return torch.zeros(N)

    class NoLoad(OnlySample):
        def save(self):
            return {}

    for incomplete, missing in ((OnlySample, "load, save"), (NoLoad, "load")):
        with pytest.raises(TypeError, match="abstract"):
            incomplete()
        with pytest.raises(TypeError, match=f"is abstract: implement {missing}"):
            NNHandler(Decoder).set_sampler(incomplete)


class KwargsStateSampler(Sampler):
    """The form of the original's model_utils pages: ``super().__init__(**kwargs)`` and
    ``load(self, **state_dict)`` returning the sampler."""

    def __init__(self, mean=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mean = mean

    def sample(self, N, device, **kwargs):
        return torch.full((N, 2), self.mean, device=device)

    def save(self):
        return {"mean": self.mean}

    def load(self, **state_dict):
        self.mean = state_dict["mean"]
        return self


def test_load_accepts_the_state_positionally_or_as_keywords():
    positional, keywords = CountingSampler(), KwargsStateSampler(unused=1)
    positional.load({"drawn": 4})
    assert positional.drawn == 4 and positional.loaded == {"drawn": 4}
    positional.load(drawn=6)
    assert positional.drawn == 6
    assert keywords.load({"mean": 2.0}) is keywords and keywords.mean == 2.0
    assert keywords.load(mean=3.0) is keywords and keywords.mean == 3.0


def test_a_subclass_reusing_its_parents_load_accepts_both_forms_too():
    class Reused(KwargsStateSampler):
        load = KwargsStateSampler.load  # already wrapped once: wrapped again, same behaviour

    sampler = Reused()
    assert sampler.load({"mean": 2.0}) is sampler and sampler.mean == 2.0
    assert sampler.load(mean=5.0) is sampler and sampler.mean == 5.0


def test_a_keyword_load_sampler_round_trips_through_a_checkpoint():
    handler = NNHandler(Decoder)
    handler.set_sampler(KwargsStateSampler, mean=1.0)
    handler.sampler.mean = 4.0  # state that only save()/load() carry
    handler.save("kw.pth")
    loaded = NNHandler.load("kw.pth")
    assert torch.all(loaded.get_samples(3) == 4.0)


def test_set_sampler_takes_a_sampler_object_and_sample_n_draws_from_it():
    handler = NNHandler(Decoder)
    sampler = CountingSampler(scale=3.0, width=1)
    handler.set_sampler(sampler)  # the original's model_utils form
    assert handler.sampler is sampler and handler.setup.sampler.target is CountingSampler
    out = handler.sample(N=4)  # likewise: sample(N=...) is get_samples(N)
    assert out.shape == (4, 1) and torch.all(out == 3.0) and sampler.drawn == 4
    with pytest.raises(TypeError, match="shape and steps.*or N alone"):
        handler.sample((4, 1))
    with pytest.raises(TypeError, match="Sampler object alone, got CountingSampler with kwargs"):
        handler.set_sampler(sampler, scale=2.0)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda h: h.set_sampler(Sampler),
            TypeError,
            "Sampler is abstract: implement load, sample, save",
        ),
        (lambda h: h.set_sampler(NotASampler()), TypeError, "set_sampler expects a Sampler"),
        (lambda h: h.set_sampler(CountingSampler, speed=3), TypeError, "Could not build"),
        (lambda h: setattr(h, "sampler", NotASampler()), TypeError, "lacks save, load"),
        (lambda h: setattr(h, "sampler", CountingSampler), TypeError, "use handler.set_sampler"),
        (lambda h: h.get_samples(0), ValueError, "N must be an integer >= 1"),
    ],
)
def test_bad_sampler_use(call, error, match):
    handler = NNHandler(Decoder)
    handler.set_sampler(CountingSampler)
    with pytest.raises(error, match=match):
        call(handler)


def test_model_sampler_decodes_with_the_model():
    handler = NNHandler(Decoder, latent=3, out=2)
    handler.set_sampler(DecoderSampler, model=handler.module, temperature=0.0)
    out = handler.get_samples(5)
    expected = handler.module.lin.bias.detach().expand(5, 2)
    assert torch.allclose(out, expected)


def test_sde_and_sampler_round_trip_through_save_and_load():
    pytest.importorskip("nn_handler.checkpoint")
    handler = NNHandler(Decoder, model_type="score_based")
    handler.set_sde(VESDE, sigma_min=0.05, sigma_max=12.0, T=2.0)
    handler.set_loss_fn(denoising_score_matching)
    handler.set_sampler(CountingSampler, scale=0.5)
    handler.get_samples(7)
    handler.save("gen.pth")

    loaded = NNHandler.load("gen.pth")
    assert loaded.loss_fn is denoising_score_matching
    assert isinstance(loaded.sde, VESDE)
    assert loaded.sde.hparams == {"sigma_min": 0.05, "sigma_max": 12.0, "T": 2.0, "epsilon": 1e-5}
    assert loaded.setup.sde.kwargs == {"sigma_min": 0.05, "sigma_max": 12.0, "T": 2.0}
    assert isinstance(loaded.sampler, CountingSampler) and loaded.sampler.scale == 0.5
    assert loaded.sampler.drawn == 7  # load(state) received the saved dict
    assert torch.equal(loaded.sampler.loaded["history"], torch.arange(3))
    assert torch.all(loaded.get_samples(2) == 0.5)

    bare = NNHandler.load("gen.pth", skip_sampler_sde=True)
    assert bare.sde is None and bare.sampler is None


def test_assigned_sde_object_round_trips_by_its_hparams():
    pytest.importorskip("nn_handler.checkpoint")
    handler = NNHandler(Decoder, model_type="score_based")
    handler.sde = VPSDE(0.2, 9.0, epsilon=1e-3)
    handler.set_loss_fn(denoising_score_matching)
    handler.save("vp.pth")
    loaded = NNHandler.load("vp.pth")
    assert isinstance(loaded.sde, VPSDE)
    assert loaded.sde.hparams == {"beta_min": 0.2, "beta_max": 9.0, "T": 1.0, "epsilon": 1e-3}


def test_sampler_holding_the_model_round_trips_with_its_weights():
    pytest.importorskip("nn_handler.checkpoint")
    handler = NNHandler(Decoder, latent=3, out=2)
    with torch.no_grad():
        handler.module.lin.bias.fill_(0.75)
    handler.set_sampler(DecoderSampler, model=handler.module, temperature=0.0)
    handler.set_loss_fn(torch.nn.functional.mse_loss)
    handler.save("dec.pth")
    loaded = NNHandler.load("dec.pth")
    assert torch.allclose(loaded.get_samples(4), torch.full((4, 2), 0.75))


def test_a_sampler_given_the_handlers_model_stays_linked_after_load(tmp_path):
    """sampler.md's pattern: set_sampler(MySampler, model=handler.module, temperature=0.7)."""
    handler = NNHandler(Decoder)
    handler.set_sampler(DecoderSampler, model=handler.module, temperature=0.7)
    handler.save(str(tmp_path / "s.pth"))
    stored = torch.load(tmp_path / "s.pth", weights_only=True)["sampler_kwargs"]
    assert stored["model"] == {"__nn_handler__": "own_module"}  # a link, not a copy
    loaded = NNHandler.load(str(tmp_path / "s.pth"))
    assert loaded.sampler.model is loaded.module and loaded.sampler.temperature == 0.7
    with torch.no_grad():
        loaded.module.lin.bias.fill_(100.0)  # "more training": the sampler sees it
    assert loaded.get_samples(64).mean() > 50
