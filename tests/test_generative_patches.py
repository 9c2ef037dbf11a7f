"""Patch-based score models: random patches with coordinate grids, their DSM losses, the
full-image score assembled from patches, and ``NNHandler.sample(patch_size=, stride=)``.

Expected values are computed by hand from the documented formulas: a coordinate ``i`` of an
image of side ``n`` is ``2 * i / (n - 1) - 1``; the losses are ``sum((z + model(...)) ** 2)``
over the patches divided by their number.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nn_handler import VESDE, VPSDE, ModelType, NNHandler
from nn_handler.generative.patches import make_pos_grid, patch_score, patchify
from nn_handler.model_utils.score_models import (
    get_schedule_type,
    get_t_schedule,
    patch_denoising_score_matching,
    patch_score_vectorized,
)
from nn_handler.model_utils.score_models.loss_fn import patchify_denoising_score_matching
from nn_handler.model_utils.score_models.schedules import TSchedule

pytestmark = pytest.mark.usefixtures("one_thread")


def coord(i, n):
    return 2 * torch.as_tensor(i, dtype=torch.float32) / (n - 1) - 1


# ------------------------------------------------------------------ grids and patches
def test_make_pos_grid_holds_the_patch_columns_then_rows_scaled_to_minus_one_one():
    grid = make_pos_grid(6, 12, 4, 28, "cpu")
    assert grid.shape == (1, 2, 4, 4)
    for r in range(4):
        for c in range(4):
            assert grid[0, 0, r, c].item() == pytest.approx(2 * (6 + c) / 27 - 1, abs=1e-6)
            assert grid[0, 1, r, c].item() == pytest.approx(2 * (12 + r) / 27 - 1, abs=1e-6)
    corners = make_pos_grid(0, 0, 28, 28)
    assert corners[0, :, 0, 0].tolist() == [-1.0, -1.0]
    assert corners[0, :, -1, -1].tolist() == pytest.approx([1.0, 1.0])


def test_patchify_crops_at_the_corners_it_draws_rows_then_columns():
    images = torch.arange(2 * 3 * 7 * 9, dtype=torch.float32).reshape(2, 3, 7, 9)
    torch.manual_seed(5)
    rows = torch.randint(0, 7 - 4 + 1, (2,))
    cols = torch.randint(0, 9 - 4 + 1, (2,))
    torch.manual_seed(5)
    patches, pos = patchify(images, 4)
    assert patches.shape == (2, 3, 4, 4) and pos.shape == (2, 2, 4, 4)
    for n in range(2):
        i, j = int(rows[n]), int(cols[n])
        assert torch.equal(patches[n], images[n, :, i : i + 4, j : j + 4])
        assert torch.allclose(pos[n, 0], coord(j + torch.arange(4), 9).expand(4, 4))
        assert torch.allclose(pos[n, 1], coord(i + torch.arange(4), 7)[:, None].expand(4, 4))
    torch.manual_seed(5)
    assert torch.equal(patchify(images, 4, return_pos=False), patches)


def test_patchify_of_the_whole_image_draws_nothing_and_a_padded_image_is_cropped_inside():
    images = torch.randn(3, 1, 5, 5)
    state = torch.get_rng_state()
    patches, pos = patchify(images, 5)
    assert torch.equal(patches, images) and torch.equal(torch.get_rng_state(), state)
    assert torch.allclose(pos[0], make_pos_grid(0, 0, 5, 5)[0])
    # A 6x6 image centred in 10x10 NaN padding: every crop lies inside it.
    padded = torch.full((64, 1, 10, 10), float("nan"))
    padded[:, :, 2:8, 2:8] = 1.0
    torch.manual_seed(0)
    crops = patchify(padded, 3, return_pos=False, image_res=(6, 6))
    assert torch.isfinite(crops).all()


def test_patchify_refuses_a_patch_larger_than_the_image():
    with pytest.raises(ValueError, match="larger than the image"):
        patchify(torch.zeros(1, 1, 4, 4), 5)


# ------------------------------------------------------------------------- losses
class Recorder(nn.Module):
    """``model(t, x, *rest)`` that records its inputs and returns ``respond(t, x, *rest)``."""

    def __init__(self, respond):
        super().__init__()
        self.respond, self.calls = respond, []

    def forward(self, t, x, *rest):
        self.calls.append((t, x, *rest))
        return self.respond(t, x, *rest)


def test_patch_dsm_loss_by_hand():
    sde = VESDE(sigma_min=0.01, sigma_max=10.0)
    data = torch.randn(3, 2, 4, 4)
    grid = make_pos_grid(0, 0, 4, 8).expand(3, 2, 4, 4)
    samples = torch.cat([data, grid], dim=1)  # the last two channels: the coordinate grid
    model = Recorder(lambda t, x, pos: torch.full_like(x, 0.5))

    torch.manual_seed(11)
    z = torch.randn(3, 2, 4, 4)  # drawn first, then the times
    t = torch.rand(3) * (sde.T - sde.epsilon) + sde.epsilon
    torch.manual_seed(11)
    loss = patch_denoising_score_matching(samples, sde, model, "cpu")

    assert loss.item() == pytest.approx(((z + 0.5) ** 2).sum().item() / 3, rel=1e-6)
    t_seen, x_seen, pos_seen = model.calls[0]
    assert torch.equal(t_seen, t) and torch.equal(pos_seen, grid)
    sigma = sde.sigma(t).view(3, 1, 1, 1)
    assert torch.allclose(x_seen, data + sigma * z)  # only the data channels are noised


def test_patch_dsm_loss_of_the_exact_denoiser_is_zero():
    sde = VESDE(sigma_min=0.01, sigma_max=10.0)
    data = torch.zeros(4, 1, 3, 3)  # x_t = sigma(t) z: the exact answer is -x_t / sigma(t)
    samples = torch.cat([data, make_pos_grid(2, 1, 3, 9).expand(4, 2, 3, 3)], dim=1)
    exact = Recorder(lambda t, x, pos: -x / sde.sigma(t).view(-1, 1, 1, 1))
    assert patch_denoising_score_matching(samples, sde, exact, None).item() == pytest.approx(
        0.0, abs=1e-8
    )


def test_patch_dsm_loss_refuses_samples_without_grid_channels():
    with pytest.raises(ValueError, match="patchify_denoising_score_matching"):
        patch_denoising_score_matching(torch.zeros(2, 1, 4, 4), VESDE(0.01, 1.0), None, "cpu")


def test_patchify_dsm_loss_by_hand_and_what_the_model_sees():
    sde = VESDE(sigma_min=0.01, sigma_max=10.0)
    images = torch.randn(2, 1, 9, 9)
    model = Recorder(lambda t, x, pos: torch.zeros_like(x))
    torch.manual_seed(3)
    loss = patchify_denoising_score_matching(images, sde, model, "cpu", [4], 3)
    t, x_t, pos = model.calls[0]
    assert x_t.shape == (6, 1, 4, 4) and pos.shape == (6, 2, 4, 4) and t.shape == (6,)
    # Zero output: the loss is sum(z^2) over the 6 patches / 6, with z = (x_t - x) / sigma(t).
    torch.manual_seed(3)
    torch.randint(0, 1, (6,))  # the size draw
    clean = []
    for n in range(6):
        i, j = int(torch.randint(0, 6, (1,))), int(torch.randint(0, 6, (1,)))
        clean.append(images[n // 3, :, i : i + 4, j : j + 4])
        assert torch.allclose(pos[n, 0, 0], coord(j + torch.arange(4), 9))
    z = (x_t - torch.stack(clean)) / sde.sigma(t).view(-1, 1, 1, 1)
    assert loss.item() == pytest.approx((z**2).sum().item() / 6, rel=1e-5)


def test_patchify_dsm_loss_mixes_sizes_size_by_size_and_repeats_conditions_per_patch():
    # A near-noiseless SDE: each patch still shows its image's constant value b.
    sde = VESDE(sigma_min=1e-6, sigma_max=1e-5)
    images = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 8, 8).contiguous()
    label = torch.arange(3.0).view(3, 1)
    model = Recorder(lambda t, x, pos, c: torch.zeros_like(x))
    torch.manual_seed(0)
    patchify_denoising_score_matching(images, sde, model, "cpu", [3, 5], 4, True, label)
    assert len(model.calls) == 2  # both sizes were drawn (seed 0)
    assert sum(call[1].shape[0] for call in model.calls) == 12
    for _t, x, pos, c in model.calls:
        assert len({tuple(x.shape[2:]), tuple(pos.shape[2:])}) == 1  # one size per call
        assert torch.allclose(x.mean(dim=(1, 2, 3)), c[:, 0], atol=1e-3)


def test_patchify_dsm_loss_without_grid_calls_the_model_without_it():
    model = Recorder(lambda t, x: torch.zeros_like(x))
    patchify_denoising_score_matching(torch.randn(2, 1, 6, 6), VESDE(0.01, 1.0), model, "cpu",
                                      [4], pass_grid=False)  # fmt: skip
    assert len(model.calls[0]) == 2


# ------------------------------------------------------------------- patch score
def test_patch_score_averages_the_patches_and_places_their_grids():
    x = torch.randn(2, 1, 28, 28)
    # A score equal to the patch itself: every covering patch agrees, the average is x.
    same = patch_score(lambda t, p, pos: p, torch.tensor(0.3), x, 16, 6)
    assert torch.allclose(same, x, atol=1e-6)
    # A score equal to the column coordinate: the assembled image holds 2c/27 - 1 everywhere.
    columns = patch_score(lambda t, p, pos: pos[:, :1], torch.tensor(0.3), x, 16, 6)
    assert torch.allclose(columns[1, 0], coord(torch.arange(28), 28).expand(28, 28), atol=1e-6)
    # Overlaps are averaged: the number of windows covering each pixel, times 1 / count = 1.
    counts = patch_score(lambda t, p, pos: torch.ones_like(p), 0.3, x, 16, 12)
    assert torch.allclose(counts, torch.ones_like(x))


def test_patch_score_repeats_t_per_patch_and_passes_conditions_after_the_grid():
    seen = []

    def score_fn(t, p, pos, cond):
        seen.append((t, p.shape, pos.shape, cond))
        return torch.zeros_like(p)

    t = torch.tensor([0.1, 0.2])
    patch_score(score_fn, t, torch.zeros(2, 1, 10, 10), 4, 3, 3, "c")
    # 3 x 3 windows in chunks of 3 positions: 3 calls of 2 images x 3 patches, image by image.
    assert [s[1] for s in seen] == [(6, 1, 4, 4)] * 3 and all(s[3] == "c" for s in seen)
    assert seen[0][0].tolist() == pytest.approx([0.1] * 3 + [0.2] * 3)


def test_patch_chunk_gives_the_same_score_as_one_pass():
    # An elementwise model: each patch's score depends on that patch alone, computed by the
    # same operations whatever the chunk, so the results are bitwise equal.
    x = torch.randn(3, 2, 28, 28)
    t = torch.rand(3)

    def score_fn(t, p, pos):
        return torch.tanh(p) * t.view(-1, 1, 1, 1) + pos.sum(1, keepdim=True)

    whole = patch_score(score_fn, t, x, 16, 6)
    for chunk in (1, 2, 4, 9, 100):
        assert torch.equal(patch_score(score_fn, t, x, 16, 6, chunk), whole)


def test_patch_score_vectorized_scores_through_the_handler():
    class Handler:
        device = torch.device("cpu")

        @staticmethod
        def score(t, x, pos):
            return pos[:, 1:]

    rows = patch_score_vectorized(Handler(), torch.tensor(0.5), torch.zeros(1, 1, 28, 28))
    assert torch.allclose(rows[0, 0], coord(torch.arange(28), 28)[:, None].expand(28, 28))


# ---------------------------------------------------------------- sampling a patch model
class PatchNet(nn.Module):
    """A tiny score model of a 16x16 patch and its 2 coordinate channels."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, padding=1)
        self.shapes: list[tuple] = []

    def forward(self, t, x, pos):
        self.shapes.append((tuple(x.shape), tuple(pos.shape)))
        return self.conv(torch.cat([x, pos], dim=1))


@pytest.fixture
def patch_handler():
    h = NNHandler(PatchNet, model_type=ModelType.SCORE_BASED, device="cpu")
    h.set_sde(VESDE, sigma_min=0.01, sigma_max=10.0)
    h.set_loss_fn(functools.partial(patchify_denoising_score_matching, patch_sizes=[16]))
    h.set_optimizer(torch.optim.Adam, lr=1e-3)
    h.set_train_loader(TensorDataset(torch.rand(16, 1, 28, 28) * 2 - 1), batch_size=8)
    h.train(1, validate_every=0, progress_bar=False)
    assert len(h.train_losses) == 1 and h.module.shapes[0] == ((8, 1, 16, 16), (8, 2, 16, 16))
    h.module.shapes.clear()
    return h


def test_a_patch_trained_model_samples_a_full_image(patch_handler):
    torch.manual_seed(0)
    samples = patch_handler.sample(shape=[2, 1, 28, 28], steps=2, patch_size=16, stride=6)
    assert samples.shape == (2, 1, 28, 28) and torch.isfinite(samples).all()
    # Each step scores the 3 x 3 windows of both images in one call, with their grids.
    assert patch_handler.module.shapes == [((18, 1, 16, 16), (18, 2, 16, 16))] * 2


def test_sampling_with_patch_chunk_gives_the_same_samples(patch_handler):
    torch.manual_seed(0)
    whole = patch_handler.sample(shape=[2, 1, 28, 28], steps=3, patch_size=16, stride=6, bar=False)
    patch_handler.module.shapes.clear()
    torch.manual_seed(0)
    chunked = patch_handler.sample(
        shape=[2, 1, 28, 28], steps=3, patch_size=16, stride=6, patch_chunk=4, bar=False
    )
    assert [s[0][0] for s in patch_handler.module.shapes] == [8, 8, 2] * 3
    # A convolution may pick its kernel by batch size, so the sums of a patch may be ordered
    # differently in a batch of 8 than of 18: equal up to float32 rounding.
    assert torch.allclose(chunked, whole, rtol=1e-5, atol=1e-5)


def test_patch_likelihood_gets_the_score_when_it_takes_three_arguments(patch_handler):
    got = []

    def three(t, x, score):
        got.append(score.shape)
        return torch.zeros_like(x)

    patch_handler.sample([1, 1, 28, 28], steps=2, patch_size=16, stride=12, bar=False,
                         likelihood_score_fn=three)  # fmt: skip
    assert got == [(1, 1, 28, 28)] * 2
    two = patch_handler.sample([1, 1, 28, 28], 2, patch_size=16, stride=12, bar=False,
                               likelihood_score_fn=lambda t, x: torch.zeros_like(x))  # fmt: skip
    assert two.shape == (1, 1, 28, 28)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patch_size": 16}, "patch_size and stride go together"),
        ({"stride": 6}, "patch_size and stride go together"),
        ({"patch_size": 16, "stride": 5}, "last 2 pixels"),
        ({"patch_size": 32, "stride": 6}, "larger than the image"),
        ({"patch_chunk": 2}, "give patch_size and stride"),
        ({"patch_size": 16, "stride": 6, "patch_chunk": 0}, "patch_chunk must be"),
    ],
)
def test_bad_patch_arguments_are_refused_by_name(patch_handler, kwargs, message):
    with pytest.raises(ValueError, match=message):
        patch_handler.sample([1, 1, 28, 28], steps=1, bar=False, **kwargs)


# ------------------------------------------------------------------ time schedules
def test_t_schedules_by_hand():
    ve = VESDE(sigma_min=0.01, sigma_max=10.0, epsilon=0.2)
    assert get_schedule_type(ve) is TSchedule.LINEAR
    assert get_t_schedule(ve, 4, "cpu").tolist() == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    vp = VPSDE(beta_min=0.1, beta_max=20.0, epsilon=0.2)
    assert get_schedule_type(vp) is TSchedule.COSINE
    # eps + (T - eps) (1 + cos(pi i / 4)) / 2
    expected = [1.0, 0.2 + 0.4 * (1 + 2**-0.5), 0.6, 0.2 + 0.4 * (1 - 2**-0.5), 0.2]
    assert get_t_schedule(vp, 4).tolist() == pytest.approx(expected, abs=1e-6)

    class VPSDE_:  # another package's VP-SDE is recognised by its class name
        T, epsilon = 1.0, 0.0

    VPSDE_.__name__ = "VPSDE"
    assert get_schedule_type(VPSDE_()) is TSchedule.COSINE
    with pytest.raises(ValueError, match="steps"):
        get_t_schedule(ve, 0)
