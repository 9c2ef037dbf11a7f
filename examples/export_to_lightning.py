"""Build a handler in Python, then hand it to plain Lightning: Trainer, ModelCheckpoint, CLI YAML.

Run:  python examples/export_to_lightning.py [--out DIR]
It trains a classifier on scikit-learn's digits with NNHandler, continues it with a
``lightning.Trainer`` and a Lightning ``ModelCheckpoint``, reloads that Lightning checkpoint
as an NNHandler, and shows what ``export_config`` (the Lightning CLI's YAML) says about a setup
whose data are in-memory tensors. Files go to DIR (default: a temporary directory, removed at
the end); the last line says which files and where.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings

import lightning as L
import torch
from digits import DigitsNet, accuracy, digits_datasets
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from nn_handler import NNHandler


def main(epochs: int = 4, progress_bar: bool = True, out: str | None = None) -> float:
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

    with tempfile.TemporaryDirectory() as scratch:
        tmp = out or scratch
        os.makedirs(tmp, exist_ok=True)
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
        #    have no import path: export_config says so instead of writing a config that
        #    cannot rebuild them. strict=False writes it anyway, with null in their place (and a
        #    warning listing them) for the user to fill in.
        yaml_path = os.path.join(tmp, "digits.yaml")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            handler.export_config(yaml_path, epochs=epochs, seed=0, strict=False)
        with open(yaml_path, encoding="utf-8") as f:  # the header lists what is null
            null = [line[4:].rstrip() for line in f if line.startswith("#   ")]
        print(f"digits.yaml left null, as expected ({len(caught)} warning): " + "; ".join(null))

        where = os.path.abspath(tmp) if out else f"{tmp} (a temporary directory, now removed)"
        written = ", ".join(sorted(os.listdir(tmp)))
        print(f"wrote {written} to {where}")
    return handler.val_metrics_history["accuracy"][-1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--no-progress-bar", action="store_true")
    parser.add_argument("--out", help="keep the checkpoints and the YAML in this directory")
    args = parser.parse_args()
    accuracy_value = main(args.epochs, progress_bar=not args.no_progress_bar, out=args.out)
    if accuracy_value < 0.9:
        raise SystemExit(f"validation accuracy {accuracy_value:.4f} is below 0.9")
