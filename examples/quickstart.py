"""Train a small classifier on scikit-learn's handwritten digits with NNHandler.

Run:  python examples/quickstart.py [--out DIR]
The digits data set ships inside scikit-learn: nothing is downloaded. The checkpoint goes to
``DIR/digits.pth`` (default: a temporary directory, removed at the end); the last line says where.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch
from digits import DigitsNet, accuracy, digits_datasets
from torch import nn

from nn_handler import NNHandler


def main(epochs: int = 20, progress_bar: bool = True, out: str | None = None) -> float:
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
        folder = out or tmp
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "digits.pth")
        handler.save(path)
        restored = NNHandler.load(path)
        original = torch.cat(handler.predict(handler.val_loader))
        # Datasets are not stored in checkpoints: give the restored handler a loader to read.
        reloaded = torch.cat(restored.predict(handler.val_loader))
        assert torch.equal(original, reloaded)
        print(f"saved, reloaded and predicted {len(reloaded)} samples: identical outputs")
    where = os.path.abspath(path) if out else f"{path} (a temporary directory, now removed)"
    print(f"wrote the checkpoint {where}")
    return val_accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--no-progress-bar", action="store_true")
    parser.add_argument("--out", help="keep the checkpoint in this directory")
    args = parser.parse_args()
    acc = main(args.epochs, progress_bar=not args.no_progress_bar, out=args.out)
    if acc < 0.95:
        raise SystemExit(f"validation accuracy {acc:.4f} is below 0.95")
