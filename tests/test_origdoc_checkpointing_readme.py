"""The original's checkpointing/README.md example workflow, run as a user would.
Adaptations are marked ``# ADAPTED``."""

from __future__ import annotations

import os
import re

from torch.utils.data import random_split


def test_example_workflow(cls_data):
    import torch

    # ADAPTED: the page's placeholders: your_project.models.YourModel and the two datasets
    from models import TinyNet as YourModel

    split = random_split(cls_data, [160, 32], generator=torch.Generator().manual_seed(0))
    train_dataset, val_dataset = split

    from nn_handler import NNHandler

    # 1. Initialize the handler
    handler = NNHandler(
        model_class=YourModel, device="cuda" if torch.cuda.is_available() else "cpu"
    )

    # 2. Configure the handler
    handler.set_optimizer(torch.optim.Adam, lr=0.001)
    handler.set_loss_fn(torch.nn.CrossEntropyLoss())
    handler.set_train_loader(train_dataset, batch_size=32)
    handler.set_val_loader(val_dataset, batch_size=32)

    # 3. Configure auto-saving
    handler.auto_save(
        interval=5,  # Save every 5 epochs
        save_path="checkpoints",  # Directory to save checkpoints
        name="model_epoch{epoch}_valloss{val_loss:.4f}",  # Filename format
        overwrite=False,  # Keep all checkpoints
    )

    # 4. Train the model
    handler.train(epochs=30, validate_every=1, progress_bar=False)

    # 5. Save the final model state
    handler.save("models/final_model.pth")

    # Later: Load the model for inference
    loaded_handler = NNHandler.load(
        path="models/final_model.pth", device="cuda" if torch.cuda.is_available() else "cpu"
    )

    saved = sorted(os.listdir("checkpoints"))
    epochs = sorted(
        int(re.match(r"model_epoch(\d+)_valloss\d\.\d{4}\.pth$", f).group(1)) for f in saved
    )
    assert epochs == [5, 10, 15, 20, 25, 30]
    val_at_10 = handler.val_losses[9]
    assert f"model_epoch10_valloss{val_at_10:.4f}.pth" in saved
    assert loaded_handler.train_losses == handler.train_losses and len(handler.train_losses) == 30
    for key, value in handler.module.state_dict().items():
        assert torch.equal(loaded_handler.module.state_dict()[key], value)
    # Every auto-save resumes too: the one after epoch 15 holds 15 epochs of history.
    mid = NNHandler.load(os.path.join("checkpoints", [f for f in saved if "epoch15_" in f][0]))
    assert mid.train_losses == handler.train_losses[:15]
