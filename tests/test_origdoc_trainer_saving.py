"""The original's checkpointing/trainer_saving.md: ``auto_save_epoch`` and its configuration
example, run as a user would. Adaptations are marked ``# ADAPTED``."""

from __future__ import annotations

import os
import re

import pytest
import torch
import torch.distributed as dist
from models import TinyNet

from nn_handler import NNHandler
from nn_handler.checkpointing.trainer_saving import auto_save_epoch


def test_configuration_example(cls_data):
    import torch

    from nn_handler import NNHandler

    YourModel = TinyNet  # ADAPTED: from your_project.models import YourModel

    # Initialize the handler
    handler = NNHandler(
        model_class=YourModel, device="cuda" if torch.cuda.is_available() else "cpu"
    )

    # Set up the handler with optimizer, loss function, etc.
    handler.set_optimizer(torch.optim.Adam, lr=0.001)
    handler.set_loss_fn(torch.nn.CrossEntropyLoss())
    handler.set_train_loader(cls_data, batch_size=64)  # ADAPTED: the page sets no data

    # Configure auto-saving
    handler.auto_save(
        interval=5,  # Save every 5 epochs
        save_path="checkpoints",  # Directory to save checkpoints
        name="model_epoch{epoch}_loss{loss:.4f}",  # Filename format using metrics
        overwrite=True,  # Only keep the latest auto-saved file
    )

    # Start training - auto_save_epoch will be called internally after each epoch
    handler.train(epochs=30, validate_every=1, progress_bar=False)

    expected = f"model_epoch30_loss{handler.train_losses[-1]:.4f}.pth"
    assert os.listdir("checkpoints") == [expected]  # overwrite: only the latest is kept
    assert handler.last_saved_model == os.path.join("checkpoints", expected)


@pytest.fixture
def handler(cls_data):
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.set_train_loader(cls_data, batch_size=64)
    return handler


def _manual_epochs(handler, total: int, save_on_last_epoch: bool, logs_of=None) -> list:
    saved = []
    for epoch in range(total):
        logs = logs_of(epoch) if logs_of else {"loss": 1.0 / (epoch + 1)}
        saved.append(auto_save_epoch(handler, epoch, total, save_on_last_epoch, logs))
    return saved


def test_interval_rules_in_a_hand_written_loop(handler):
    handler.auto_save(interval=2, save_path="ckpt", name="m_{epoch:02d}_{loss:.2f}")
    saved = _manual_epochs(handler, 5, save_on_last_epoch=True)
    assert saved == [None, "ckpt/m_02_0.50.pth", None, "ckpt/m_04_0.25.pth", "ckpt/m_05_0.20.pth"]
    assert sorted(os.listdir("ckpt")) == ["m_02_0.50.pth", "m_04_0.25.pth", "m_05_0.20.pth"]
    assert handler.last_saved_model == "ckpt/m_05_0.20.pth"

    handler.auto_save(interval=2, save_path="no_last", name="m_{epoch}")
    assert _manual_epochs(handler, 5, save_on_last_epoch=False)[-1] is None
    assert sorted(os.listdir("no_last")) == ["m_2.pth", "m_4.pth"]

    handler.auto_save(interval=-1, save_path="only_last", name="m_{epoch}")
    _manual_epochs(handler, 3, save_on_last_epoch=False)
    assert os.listdir("only_last") == ["m_3.pth"]

    handler.auto_save(interval=None, save_path="off")
    assert _manual_epochs(handler, 3, save_on_last_epoch=True) == [None] * 3
    assert not os.path.exists("off")


def test_overwrite_writes_the_new_file_before_removing_the_old(handler, monkeypatch):
    handler.auto_save(interval=1, save_path="ckpt", name="m_{epoch}", overwrite=True)
    existing_when_removed = []
    real_remove = os.remove

    def spy(path):
        existing_when_removed.append(sorted(os.listdir("ckpt")))
        real_remove(path)

    monkeypatch.setattr(os, "remove", spy)
    _manual_epochs(handler, 3, save_on_last_epoch=True)
    assert os.listdir("ckpt") == ["m_3.pth"]
    assert existing_when_removed == [["m_1.pth", "m_2.pth"], ["m_2.pth", "m_3.pth"]]


def test_an_auto_saved_file_resumes(handler):
    handler.train(2, progress_bar=False)
    handler.auto_save(interval=1, save_path="ckpt", name="after{epoch}")
    path = auto_save_epoch(handler, 2, 3, True, {"loss": handler.train_losses[-1]})
    loaded = NNHandler.load(path)
    assert loaded.train_losses == handler.train_losses
    assert torch.load(path, weights_only=True)["auto_saved"] is True
    assert NNHandler.load("ckpt").train_losses == handler.train_losses  # newest in the folder


def test_a_missing_log_key_falls_back_to_a_simple_name(handler):
    handler.auto_save(
        interval=10, save_path="ckpt", name="model_epoch{epoch}_valloss{val_loss:.4f}"
    )
    with pytest.warns(UserWarning, match="val_loss"):
        path = auto_save_epoch(handler, 9, 20, False, {"loss": 0.3})
    assert path == "ckpt/model_epoch_valloss_epoch10.pth" and os.path.isfile(path)


def test_bad_input(handler):
    handler.auto_save(interval=1, save_path="ckpt")
    with pytest.raises(ValueError, match="epoch must be an int >= 0"):
        auto_save_epoch(handler, -1, 3, True, {})
    with pytest.raises(ValueError, match="total_epochs"):
        auto_save_epoch(handler, 0, 0, True, {})
    with pytest.raises(TypeError, match="logs must be a dict"):
        auto_save_epoch(handler, 0, 3, True, [("loss", 1.0)])
    assert not os.path.exists("ckpt")


def test_rank_zero_with_a_barrier_in_a_process_group(handler):
    dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())
    try:
        handler.auto_save(interval=1, save_path="ckpt", name="e{epoch}")
        assert auto_save_epoch(handler, 0, 1, True, {}) == "ckpt/e1.pth"
        with pytest.raises(RuntimeError, match="auto_save_epoch failed on rank 0: ValueError"):
            auto_save_epoch(handler, -5, 1, True, {})
    finally:
        dist.destroy_process_group()
    assert re.fullmatch(r"e1\.pth", os.listdir("ckpt")[0])
