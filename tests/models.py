"""Tiny models used across the tests (importable by path, so checkpoints can name them)."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, in_features: int = 8, hidden: int = 16, out_features: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class DropoutNet(nn.Module):
    def __init__(self, in_features: int = 8, hidden: int = 16, out_features: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(hidden, out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class AutoEncoder(nn.Module):
    def __init__(self, dim: int = 8, latent: int = 3):
        super().__init__()
        self.latent_dim = latent
        self.enc = nn.Linear(dim, latent)
        self.dec = nn.Linear(latent, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(torch.tanh(self.enc(x)))


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (outputs.argmax(dim=1) == targets).float().mean()


class BatchNormNet(nn.Module):
    """A parameter-and-buffer model: BatchNorm's running statistics change in every forward."""

    def __init__(self, in_features: int = 8, hidden: int = 16, out_features: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class DtypeProbe(nn.Module):
    """Records the dtype of its output in every training forward (what autocast would change)."""

    def __init__(self, in_features: int = 8, out_features: int = 3):
        super().__init__()
        self.layer = nn.Linear(in_features, out_features)
        self.train_output_dtypes: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(x)
        if self.training:
            self.train_output_dtypes.append(out.dtype)
        return out
