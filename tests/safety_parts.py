"""Importable parts for checkpoints that fill every slot (tests/test_checkpoint_safety.py)."""

from __future__ import annotations

import torch
from torch import nn

from nn_handler import Callback, Sampler


class Nested(nn.Module):
    """A model whose kwargs hold nested lists and dicts."""

    def __init__(self, sizes=(8, 6), extra=None):
        super().__init__()
        self.sizes, self.extra = list(sizes), dict(extra or {})
        self.body = nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.ReLU(), nn.Linear(sizes[1], 3))

    def forward(self, x):
        return self.body(x)


class StatefulCallback(Callback):
    def __init__(self, label: str = "a", weights=(1.0, 2.0)):
        super().__init__()
        self.label, self.weights, self.seen = label, list(weights), 0

    def on_epoch_end(self, epoch, logs=None):
        self.seen += 1

    def state_dict(self):
        return {"seen": self.seen, "notes": {"last": [self.label]}}

    def load_state_dict(self, state):
        self.seen = state["seen"]


class PlainSampler(Sampler):
    def __init__(self, width: int = 2, options=None):
        self.width, self.options, self.drawn = width, dict(options or {}), 0

    def sample(self, N, device, **kwargs):
        self.drawn += N
        return torch.zeros(N, self.width, device=device)

    def save(self):
        return {"drawn": self.drawn, "log": [1, 2]}

    def load(self, state):
        self.drawn = state["drawn"]


def accuracy(outputs, targets):
    return (outputs.argmax(1) == targets).float().mean()


def marking_loss(outputs, targets, path=None):
    """A loss that writes ``path`` when called with it: a file-chosen argument that acts."""
    if path is not None:
        with open(path, "w") as f:
            f.write("called")
    return torch.nn.functional.cross_entropy(outputs, targets)


def small_data():
    from torch.utils.data import TensorDataset

    x = torch.randn(32, 8)
    return TensorDataset(x, (x[:, 0] > 0).long())


def full_handler():
    """A handler with every slot a checkpoint stores filled (not trained)."""
    from nn_handler import NNHandler

    torch.manual_seed(0)
    h = NNHandler(Nested, sizes=[8, 6], extra={"depth": [1, {"k": 2}]})
    h.set_optimizer(torch.optim.Adam, lr=0.01)
    h.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    h.set_loss_fn(torch.nn.functional.cross_entropy)
    h.add_metric("acc", accuracy)
    h.add_metric("ce", torch.nn.CrossEntropyLoss(weight=torch.ones(3)))
    h.add_callback(StatefulCallback("x"))
    h.set_sampler(PlainSampler, width=3, options={"a": [1, 2]})
    h.set_train_loader(small_data(), batch_size=16)
    return h
