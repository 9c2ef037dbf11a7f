"""The model of the CLI example: a small multi-layer perceptron classifier."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLP", "accuracy"]


class MLP(nn.Module):
    """``in_features`` → ``hidden`` (ReLU, dropout) → ``n_classes`` logits."""

    def __init__(
        self, in_features: int = 8, hidden: int = 32, n_classes: int = 3, dropout: float = 0.0
    ):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of samples whose highest logit is the target class."""
    return (outputs.argmax(dim=1) == targets).float().mean()
