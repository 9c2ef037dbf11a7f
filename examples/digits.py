"""The digits model, metric and data shared by the examples.

They live in an importable module so that checkpoints can name them by import path.

scikit-learn's handwritten digits ship inside scikit-learn: nothing is downloaded.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import TensorDataset

__all__ = ["DigitsNet", "accuracy", "digits_datasets"]


class DigitsNet(nn.Module):
    """A two-layer perceptron for 8x8 digit images."""

    def __init__(self, hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of correct predictions in a batch (a tensor: no host sync per batch)."""
    return (outputs.argmax(dim=1) == targets).float().mean()


def digits_datasets(seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """An 80/20 stratified train/validation split, pixels scaled to [0, 1]."""
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return TensorDataset(x_tr, y_tr), TensorDataset(x_va, y_va)
