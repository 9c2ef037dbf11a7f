"""What a plain metric may return: one number per batch. A tensor of several values is refused
by name instead of being averaged into one number (the documentation's metrics are scalars)."""

from __future__ import annotations

import pytest
import torch
from models import TinyNet
from nn_handler.adapters.steps.epoch_stats import EpochStats

from nn_handler import NNHandler


def handler_with(metric, data) -> NNHandler:
    torch.manual_seed(0)
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.add_metric("per_class", metric)
    handler.set_train_loader(data, batch_size=64)
    return handler


def test_a_vector_metric_is_refused_by_name(cls_data):
    def per_class_hits(outputs, targets):  # shape (3,)
        return torch.stack([(outputs.argmax(1) == c).float().mean() for c in range(3)])

    handler = handler_with(per_class_hits, cls_data)
    with pytest.raises(ValueError, match=r"Metric 'per_class' returned a tensor of shape \(3,\)"):
        handler.train(1, progress_bar=False)
    assert handler.train_losses == []  # no epoch was recorded with a made-up value


@pytest.mark.parametrize(
    "value", [torch.tensor(0.25), torch.tensor([0.25]), torch.tensor([[0.25]]), 0.25]
)
def test_one_number_in_any_shape_is_a_metric(value):
    stats = EpochStats()
    stats.add_loss(torch.tensor(1.0), 2)
    stats.add_metric("m", value)
    stats.add_metric("m", torch.tensor(0.75))
    assert stats.reduce(torch.device("cpu"))["m"] == pytest.approx(0.5)
