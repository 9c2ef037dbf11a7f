"""Build a handler in Python, then hand it to plain Lightning: Trainer, ModelCheckpoint, CLI YAML.

Run:  python examples/export_to_lightning.py
It trains a classifier on scikit-learn's digits with NNHandler, continues it with a
``lightning.Trainer`` and a Lightning ``ModelCheckpoint``, reloads that Lightning checkpoint
as an NNHandler, and writes the Lightning CLI config that rebuilds the setup.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import lightning as L
import torch
from digits import DigitsNet, accuracy, digits_datasets
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from nn_handler import NNHandler


def main(epochs: int = 4, progress_bar: bool = False) -> float:
    train_set, val_set = digits_datasets()
    torch.manual_seed(0)
    handler = NNHandler(DigitsNet, hidden=64)
    handler.set_optimizer(torch.optim.Adam, lr=3e-3)
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=5, gamma=0.5)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.add_metric("accuracy", accuracy)
    handler.set_train_loader(train_set, batch_size=64, shuffle=True)
    handler.set_val_loader(val_set, batch_size=256)

    # 1. The drop-in API for the first epochs.
    handler.train(epochs, seed=0, progress_bar=progress_bar)

    with tempfile.TemporaryDirectory() as tmp:
        # 2. The same handler as a plain LightningModule, in a Trainer configured by hand. Epoch
        #    numbers continue from the handler's history: max_epochs counts from its first epoch.
        module, data = handler.to_lightning_module(), handler.to_datamodule()
        checkpoint = ModelCheckpoint(dirpath=tmp, monitor="val_loss", save_last=True)
        trainer = L.Trainer(
            max_epochs=2 * epochs,
            logger=False,
            enable_progress_bar=progress_bar,
            enable_model_summary=False,
            callbacks=[checkpoint, EarlyStopping("val_loss")],
        )
        trainer.fit(module, datamodule=data)
        print(
            f"trained {len(handler.train_losses)} epochs; "
            f"val accuracy {handler.val_metrics_history['accuracy'][-1]:.4f}"
        )

        # 3. What Lightning wrote is a handler checkpoint.
        restored = NNHandler.load(os.path.join(tmp, "last.ckpt"))
        assert restored.train_losses == handler.train_losses
        same = torch.equal(
            torch.cat(restored.predict(handler.val_loader)),
            torch.cat(handler.predict(handler.val_loader)),
        )
        print(
            f"NNHandler.load(last.ckpt): {len(restored.train_losses)} epochs of history, "
            f"identical predictions: {same}"
        )

    # 4. The YAML for `nn-handler fit --config ...`. The digits are in-memory tensors, which
    #    have no import path: export_config reports them instead of dropping them.
    with tempfile.TemporaryDirectory() as tmp:
        try:
            handler.export_config(os.path.join(tmp, "digits.yaml"), epochs=epochs, seed=0)
        except ValueError as err:
            print("export_config reported:", err.problems[0])
    return handler.val_metrics_history["accuracy"][-1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--progress-bar", action="store_true")
    args = parser.parse_args()
    accuracy_value = main(args.epochs, progress_bar=args.progress_bar)
    if accuracy_value < 0.9:
        raise SystemExit(f"validation accuracy {accuracy_value:.4f} is below 0.9")
