"""The original's checkpointing/loading.md, run as a user would: ``NNHandler.load``,
``NNHandler.initialize_from_checkpoint`` and the module functions ``load`` /
``initialize_from_checkpoint`` of ``nn_handler.checkpointing.loading``. Adaptations are marked
``# ADAPTED``."""

from __future__ import annotations

import os

import pytest
import torch
from models import TinyNet
from torch import nn

from nn_handler import NNHandler


class YourModel(nn.Module):
    """ADAPTED: the page's your_project.models.YourModel, with its constructor arguments."""

    def __init__(self, input_size=784, hidden_size=256, output_size=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, output_size)
        )

    def forward(self, x):
        return self.net(x)


@pytest.fixture
def trained(cls_data):
    """ADAPTED: the page loads models/my_model_checkpoint.pth and models/pretrained_model.pth;
    a short training writes them."""
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.SGD, lr=0.1, momentum=0.9)
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.set_train_loader(cls_data, batch_size=64)
    handler.train(2, progress_bar=False)
    handler.save("models/my_model_checkpoint.pth")
    handler.save("models/pretrained_model.pth")
    return handler


def test_loading_a_complete_handler_state(trained, cls_data):
    import torch

    from nn_handler import NNHandler

    # Path to the saved handler state
    checkpoint_path = "models/my_model_checkpoint.pth"

    # Load the complete handler state
    loaded_handler = NNHandler.load(
        path=checkpoint_path, device="cuda" if torch.cuda.is_available() else "cpu"
    )

    # Resume training from the loaded state
    print(f"Resuming training from epoch {len(loaded_handler.train_losses)}...")
    # ADAPTED: datasets are not part of a checkpoint (nor were they in the original's)
    loaded_handler.set_train_loader(cls_data, batch_size=64)
    loaded_handler.train(epochs=20, progress_bar=False)  # Continue training for 20 more epochs

    assert len(loaded_handler.train_losses) == 22
    assert loaded_handler.train_losses[:2] == trained.train_losses
    # The optimizer and scheduler went on from their saved state: 2 + 20 scheduler steps.
    assert loaded_handler.scheduler.last_epoch == 22
    assert loaded_handler.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**22)


def test_loading_only_model_weights_for_inference():
    import torch

    from nn_handler import NNHandler

    # ADAPTED: the page assumes models/pretrained_weights.pth exists; written here.
    reference = YourModel(input_size=784, hidden_size=256, output_size=10)
    os.makedirs("models")
    torch.save(reference.state_dict(), "models/pretrained_weights.pth")

    # Path to the model weights checkpoint
    weights_path = "models/pretrained_weights.pth"

    # Initialize a new handler with only the model weights loaded
    inference_handler = NNHandler.initialize_from_checkpoint(
        checkpoint_path=weights_path,
        model_class=YourModel,
        device="cuda" if torch.cuda.is_available() else "cpu",
        # Pass any required model constructor arguments
        input_size=784,
        hidden_size=256,
        output_size=10,
    )

    # Set to evaluation mode for inference
    inference_handler.eval()

    # Use the model for inference
    test_input = torch.randn(1, 784).to(inference_handler.device)
    with torch.no_grad():
        output = inference_handler.model(test_input)
        prediction = output.argmax(dim=1).item()
        print(f"Predicted class: {prediction}")

    assert torch.equal(output, reference(test_input).detach())
    assert inference_handler.optimizer is None and inference_handler.train_losses == []


def test_selective_loading_for_fine_tuning(trained, cls_data):
    import torch

    from nn_handler import NNHandler

    # Path to the saved handler state
    checkpoint_path = "models/pretrained_model.pth"

    # Load the handler state, but skip optimizer and scheduler
    fine_tune_handler = NNHandler.load(
        path=checkpoint_path,
        device="cuda" if torch.cuda.is_available() else "cpu",
        skip_optimizer=True,
        skip_scheduler=True,
    )
    assert fine_tune_handler.optimizer is None and fine_tune_handler.scheduler is None

    # Set up a new optimizer with a lower learning rate for fine-tuning
    fine_tune_handler.set_optimizer(optimizer_class=torch.optim.Adam, lr=1e-5)

    # Set up a new scheduler if needed
    fine_tune_handler.set_scheduler(
        scheduler_class=torch.optim.lr_scheduler.ReduceLROnPlateau,
        mode="min",
        factor=0.5,
        patience=5,
    )

    # Continue training with the new optimization settings
    fine_tune_handler.set_train_loader(cls_data, batch_size=64)  # ADAPTED: as above
    fine_tune_handler.train(epochs=10, progress_bar=False)

    assert len(fine_tune_handler.train_losses) == 12
    assert isinstance(fine_tune_handler.optimizer, torch.optim.Adam)
    assert fine_tune_handler.optimizer.param_groups[0]["lr"] == 1e-5


def test_the_module_functions_take_the_class_first(trained):
    from nn_handler.checkpointing.loading import initialize_from_checkpoint, load

    loaded = load(NNHandler, "models/my_model_checkpoint.pth", skip_history=True)
    assert loaded.train_losses == [] and isinstance(loaded.optimizer, torch.optim.SGD)
    weights = initialize_from_checkpoint(
        NNHandler, checkpoint_path="models/my_model_checkpoint.pth", model_class=TinyNet
    )
    for key, value in trained.module.state_dict().items():
        assert torch.equal(weights.module.state_dict()[key], value)
        assert torch.equal(loaded.module.state_dict()[key], value)


def test_module_functions_bad_input(trained):
    from nn_handler.checkpointing.loading import initialize_from_checkpoint, load

    with pytest.raises(TypeError, match=r"first argument is the NNHandler class \(load\(NNHandler"):
        load("models/my_model_checkpoint.pth")
    with pytest.raises(TypeError, match="initialize_from_checkpoint"):
        initialize_from_checkpoint(TinyNet, "models/my_model_checkpoint.pth", TinyNet)
    with pytest.raises(FileNotFoundError):
        load(NNHandler, "models/missing.pth")
    torch.save({"weights": [1, 2]}, "odd.pth")
    with pytest.raises(ValueError, match="not an NNHandler checkpoint"):
        load(NNHandler, "odd.pth")
