"""Train a small classifier on scikit-learn's handwritten digits with NNHandler.

Run:  python examples/quickstart.py
The digits data set ships inside scikit-learn: nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import TensorDataset

from nn_handler import NNHandler


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
    return (outputs.argmax(dim=1) == targets).float().mean()


def digits_datasets(seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return TensorDataset(x_tr, y_tr), TensorDataset(x_va, y_va)


def main(epochs: int = 20, progress_bar: bool = True) -> float:
    train_set, val_set = digits_datasets()
    handler = NNHandler(DigitsNet, device="cpu", hidden=128)
    handler.set_optimizer(torch.optim.Adam, lr=3e-3)
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=10, gamma=0.5)
    handler.set_loss_fn(nn.functional.cross_entropy)
    handler.add_metric("accuracy", accuracy)
    handler.set_train_loader(train_set, batch_size=64, shuffle=True)
    handler.set_val_loader(val_set, batch_size=256)
    handler.train(epochs, seed=0, progress_bar=progress_bar)

    val_accuracy = handler.val_metrics_history["accuracy"][-1]
    print(f"final validation loss {handler.val_losses[-1]:.4f}, accuracy {val_accuracy:.4f}")

    # Save, reload and predict: the reloaded handler gives the same predictions.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits.pth")
        handler.save(path)
        restored = NNHandler.load(path)
        original = torch.cat(handler.predict(handler.val_loader))
        # Datasets are not stored in checkpoints: give the restored handler a loader to read.
        reloaded = torch.cat(restored.predict(handler.val_loader))
        assert torch.equal(original, reloaded)
        print(f"saved, reloaded and predicted {len(reloaded)} samples: identical outputs")
    return val_accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--no-progress-bar", action="store_true")
    args = parser.parse_args()
    acc = main(args.epochs, progress_bar=not args.no_progress_bar)
    if acc < 0.95:
        raise SystemExit(f"validation accuracy {acc:.4f} is below 0.95")
