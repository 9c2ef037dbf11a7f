"""The original's checkpointing/saving.md, run as a user would: ``save_single_file``,
``save_multi_files``, ``save_multi_from_single``. Adaptations are marked ``# ADAPTED``."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
from models import TinyNet

from nn_handler import NNHandler
from nn_handler.checkpointing.saving import (
    save_multi_files,
    save_multi_from_single,
    save_single_file,
)


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def handler(cls_data):
    """The handler of the page's first example (ADAPTED: TinyNet for YourModel, a scheduler and
    a short training so that every saved part holds something)."""
    handler = NNHandler(model_class=TinyNet, device="cpu")
    handler.set_optimizer(torch.optim.Adam, lr=0.001)
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1)
    handler.set_loss_fn(torch.nn.CrossEntropyLoss())
    handler.set_train_loader(cls_data, batch_size=64)
    handler.train(1, progress_bar=False)
    return handler


def test_saving_to_a_single_file(caplog):
    import torch

    from nn_handler import NNHandler

    YourModel = TinyNet  # ADAPTED: from your_project.models import YourModel

    # Create a simple model for demonstration
    model = YourModel()  # noqa: F841
    loss_fn = torch.nn.CrossEntropyLoss()

    # Initialize the handler
    handler = NNHandler(
        model_class=YourModel, device="cuda" if torch.cuda.is_available() else "cpu"
    )

    # Set up the handler with optimizer, loss function, etc.
    handler.set_optimizer(torch.optim.Adam, lr=0.001)
    handler.set_loss_fn(loss_fn)

    # Prepare the state to save
    state = handler.get_state_dict()

    # Save the state to a single file
    save_path = "models/my_model.pth"
    from nn_handler.checkpointing.saving import save_single_file

    save_single_file(handler, state, save_path)

    print(f"Model saved to {save_path}")

    # What was written is the handler's complete, safe state: it loads back both ways.
    raw = torch.load(save_path, weights_only=True)
    assert raw.keys() == state.keys()
    loaded = NNHandler.load(save_path)
    assert _same_tensors(loaded.module.state_dict(), handler.module.state_dict())
    assert isinstance(loaded.optimizer, torch.optim.Adam)


def test_saving_to_multiple_files(handler):
    # "Create and train a model as in the previous example": the `handler` fixture.
    state = handler.get_state_dict()

    save_path = "models/my_model.pth"
    from nn_handler.checkpointing.saving import save_multi_files

    save_multi_files(
        handler,
        state,
        save_path,
        keys_to_save=[
            "model_state_dict",
            "optimizer_state_dict",
            "scheduler_state_dict",
            "model_kwargs",
        ],
    )

    print(f"Model components saved to separate files with base path {save_path}")

    assert sorted(os.listdir("models")) == [
        "my_model_model_kwargs.pth",
        "my_model_model_state_dict.pth",
        "my_model_optimizer_state_dict.pth",
        "my_model_scheduler_state_dict.pth",
    ]
    weights = torch.load("models/my_model_model_state_dict.pth", weights_only=True)
    assert _same_tensors(weights, handler.module.state_dict())
    optimizer = torch.load("models/my_model_optimizer_state_dict.pth", weights_only=True)
    assert optimizer["param_groups"] == handler.optimizer.state_dict()["param_groups"]
    scheduler = torch.load("models/my_model_scheduler_state_dict.pth", weights_only=True)
    assert scheduler == handler.scheduler.state_dict()
    assert torch.load("models/my_model_model_kwargs.pth", weights_only=True) == {}
    # The weights file alone initialises a new handler.
    fresh = NNHandler.initialize_from_checkpoint("models/my_model_model_state_dict.pth", TinyNet)
    assert _same_tensors(fresh.module.state_dict(), handler.module.state_dict())


def test_multiple_files_default_keys(handler):
    written = save_multi_files(handler, handler.get_state_dict(), "out/ckpt")
    assert written == [
        os.path.join("out", f"ckpt_{k}.pth")
        for k in ("model_state_dict", "optimizer_state_dict", "model_kwargs")
    ]
    assert all(os.path.isfile(p) for p in written)


def test_converting_a_single_file_to_multiple_files(handler):
    handler.save("models/my_model_checkpoint.pth")  # ADAPTED: the page assumes this file exists

    import torch  # noqa: F401

    from nn_handler.checkpointing.saving import save_multi_from_single

    # Path to an existing single-file checkpoint
    checkpoint_path = "models/my_model_checkpoint.pth"

    # Convert to multiple files
    save_multi_from_single(
        checkpoint_path, keys_to_save=["model_state_dict", "optimizer_state_dict", "model_kwargs"]
    )

    print(f"Checkpoint at {checkpoint_path} split into multiple files")

    assert sorted(os.listdir("models")) == [
        "my_model_checkpoint.pth",  # left in place
        "my_model_checkpoint_model_kwargs.pth",
        "my_model_checkpoint_model_state_dict.pth",
        "my_model_checkpoint_optimizer_state_dict.pth",
    ]
    weights = torch.load("models/my_model_checkpoint_model_state_dict.pth", weights_only=True)
    assert _same_tensors(weights, handler.module.state_dict())


@pytest.fixture
def one_rank_group():
    """ADAPTED: the page assumes an initialised process group; a real one of world size 1."""
    dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())
    yield
    dist.destroy_process_group()


def test_saving_only_from_rank_zero(handler, one_rank_group, caplog):
    import logging

    import torch  # noqa: F401
    import torch.distributed as dist

    from nn_handler.checkpointing.saving import save_single_file

    handler.logger.disabled = False  # ADAPTED: to read the log record below
    handler.logger.propagate = True
    with caplog.at_level(logging.INFO, logger=handler.logger.name):
        # Assuming DDP is initialized
        if dist.get_rank() == 0:
            # Only Rank 0 saves the model
            state = handler.get_state_dict()
            save_path = "models/my_ddp_model.pth"
            save_single_file(handler, state, save_path)
            print(f"Model saved by Rank 0 to {save_path}")

        # Wait for Rank 0 to finish saving
        dist.barrier()

    assert os.path.isfile("models/my_ddp_model.pth")
    assert "Rank 0: saved the state to models/my_ddp_model.pth" in caplog.text


# --------------------------------------------------------------------------- bad input
def test_unsafe_state_is_refused_and_nothing_written(handler):
    state = handler.get_state_dict()
    state["model_class"] = TinyNet  # a class: the file would need code to load
    with pytest.raises(TypeError, match=r"state\['model_class'\] is a class.*get_state_dict"):
        save_single_file(handler, state, "models/bad.pth")
    state = {"model_state_dict": {}, "loss": torch.nn.CrossEntropyLoss()}
    with pytest.raises(TypeError, match=r"state\['loss'\] is a CrossEntropyLoss object"):
        save_multi_files(
            handler, state, "models/bad.pth", keys_to_save=["model_state_dict", "loss"]
        )
    assert not os.path.exists("models")
    with pytest.raises(TypeError, match="state must be a dict"):
        save_single_file(handler, [1, 2], "models/bad.pth")
    with pytest.raises(TypeError, match="path must be a file path"):
        save_single_file(handler, {}, 3)


def test_missing_or_malformed_keys(handler):
    state = handler.get_state_dict()
    with pytest.raises(KeyError, match=r"no key\(s\) \['weights'\]; its keys are"):
        save_multi_files(handler, state, "m/x.pth", keys_to_save=["model_state_dict", "weights"])
    assert not os.path.exists("m")  # nothing written when one key is missing
    with pytest.raises(TypeError, match="list of keys"):
        save_multi_files(handler, state, "m/x.pth", keys_to_save="model_state_dict")
    with pytest.raises(ValueError, match="non-empty list"):
        save_multi_files(handler, state, "m/x.pth", keys_to_save=[])


def test_split_needs_a_handler_checkpoint_file(handler):
    with pytest.raises(FileNotFoundError):
        save_multi_from_single("nowhere.pth")
    os.makedirs("folder")
    with pytest.raises(ValueError, match="is a directory"):
        save_multi_from_single("folder")
    torch.save(handler.module.state_dict(), "weights.pth")
    with pytest.raises(ValueError, match="not an NNHandler checkpoint.*bare model state_dict"):
        save_multi_from_single("weights.pth")


def test_a_failed_write_is_logged_and_raised(handler, caplog):
    import logging

    handler.logger.disabled = False
    handler.logger.propagate = True
    open("blocker", "w").close()  # a file where the folder should be
    with caplog.at_level(logging.ERROR, logger=handler.logger.name):
        with pytest.raises(OSError, match="Could not write checkpoint"):
            save_single_file(handler, handler.get_state_dict(), "blocker/model.pth")
    assert "could not save the state to blocker/model.pth" in caplog.text
