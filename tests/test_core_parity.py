"""The handler's training equals a hand-written PyTorch loop (losses, accumulation, clipping)."""

from __future__ import annotations

import pytest
import torch
from models import DropoutNet, TinyNet
from torch import nn
from torch.utils.data import DataLoader

from nn_handler import NNHandler


def _hand_loop(model, data, loss_fn, epochs, lr, accumulate=1, clip=None, batch_size=32):
    """Reference loop with Lightning's accumulation semantics.

    The loss is divided by N; the optimizer steps every N batches and at the end of the epoch.
    """
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    n_batches = len(loader)
    losses = []
    for _ in range(epochs):
        total, count = 0.0, 0
        for i, (x, y) in enumerate(loader):
            loss = loss_fn(model(x), y)
            total += loss.item() * len(x)
            count += len(x)
            (loss / accumulate).backward()
            if (i + 1) % accumulate == 0 or i + 1 == n_batches:
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                opt.zero_grad()
        losses.append(total / count)
    return losses


def _handler(data, loss_fn, out_features, lr, batch_size=32):
    torch.manual_seed(0)
    handler = NNHandler(TinyNet, out_features=out_features)
    handler.set_optimizer(torch.optim.SGD, lr=lr, momentum=0.9)
    handler.set_loss_fn(loss_fn)
    handler.set_train_loader(data, batch_size=batch_size, shuffle=False)
    return handler


@pytest.mark.parametrize(
    "kind, loss_fn, out_features",
    [("classification", nn.functional.cross_entropy, 3), ("regression", nn.functional.mse_loss, 1)],
)
def test_losses_equal_hand_written_loop(kind, loss_fn, out_features, cls_data, reg_data):
    data = cls_data if kind == "classification" else reg_data
    handler = _handler(data, loss_fn, out_features, lr=0.05)
    handler.train(3, progress_bar=False)

    torch.manual_seed(0)
    model = TinyNet(out_features=out_features)
    expected = _hand_loop(model, data, loss_fn, epochs=3, lr=0.05)

    assert handler.train_losses == pytest.approx(expected, abs=1e-6)
    for a, b in zip(handler.module.parameters(), model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_train_in_two_calls_equals_one_call(cls_data):
    one = _handler(cls_data, nn.functional.cross_entropy, 3, lr=0.05)
    one.train(4, progress_bar=False)
    two = _handler(cls_data, nn.functional.cross_entropy, 3, lr=0.05)
    two.train(2, progress_bar=False)
    two.train(2, progress_bar=False)
    assert two.train_losses == pytest.approx(one.train_losses, abs=1e-7)
    for a, b in zip(one.module.parameters(), two.module.parameters()):
        assert torch.equal(a, b)


def test_train_in_two_calls_equals_one_call_with_shuffling_and_dropout(cls_data):
    # Shuffling and dropout draw from the global generator: one draw more or less in the second
    # call (e.g. a data iterator created twice) changes the batches and masks that follow.
    def make():
        torch.manual_seed(0)
        handler = NNHandler(DropoutNet)
        handler.set_optimizer(torch.optim.SGD, lr=0.05, momentum=0.9)
        handler.set_loss_fn(nn.functional.cross_entropy)
        handler.set_train_loader(cls_data, batch_size=32, shuffle=True)
        return handler

    one = make()
    one.train(4, progress_bar=False)
    two = make()
    two.train(2, progress_bar=False)
    two.train(2, progress_bar=False)
    assert two.train_losses == one.train_losses
    for a, b in zip(one.module.parameters(), two.module.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("accumulate, clip", [(3, None), (1, 0.05), (2, 0.1)])
def test_accumulation_and_clipping_match_hand_written(accumulate, clip, cls_data):
    # 192 samples / batch 32 = 6 batches: with accumulate=... the last group may be partial.
    handler = _handler(cls_data, nn.functional.cross_entropy, 3, lr=0.1)
    handler.train(
        2, progress_bar=False, gradient_accumulation_steps=accumulate, gradient_clipping_norm=clip
    )
    torch.manual_seed(0)
    model = TinyNet()
    expected = _hand_loop(
        model, cls_data, nn.functional.cross_entropy, 2, lr=0.1, accumulate=accumulate, clip=clip
    )
    assert handler.train_losses == pytest.approx(expected, abs=1e-6)
    for a, b in zip(handler.module.parameters(), model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_clipping_changes_the_result(cls_data):
    """Guard for the test above: clipping at a tiny norm must make a visible difference."""
    plain = _handler(cls_data, nn.functional.cross_entropy, 3, lr=0.1)
    plain.train(1, progress_bar=False)
    clipped = _handler(cls_data, nn.functional.cross_entropy, 3, lr=0.1)
    clipped.train(1, progress_bar=False, gradient_clipping_norm=0.01)
    assert not torch.allclose(plain.module.body[0].weight, clipped.module.body[0].weight)


def test_epoch_loss_is_sample_weighted(cls_data):
    """192 samples in batches of 50: the last batch (42) weighs less than the others."""
    handler = _handler(cls_data, nn.functional.cross_entropy, 3, lr=0.0, batch_size=50)
    handler.train(1, progress_bar=False)
    x, y = cls_data.tensors
    with torch.no_grad():
        expected = nn.functional.cross_entropy(handler.module(x), y).item()
    assert handler.train_losses[0] == pytest.approx(expected, abs=1e-6)
