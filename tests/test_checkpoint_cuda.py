"""Checkpoints on CUDA: device mapping, grad scaler and CUDA RNG states (skipped on CPU)."""

from __future__ import annotations

import pytest
import torch
from models import DropoutNet
from torch import nn

from nn_handler import NNHandler

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.filterwarnings("ignore:The `srun` command", "ignore:.*LeafSpec"),
]


def _make(data, device="cuda"):
    torch.manual_seed(7)
    h = NNHandler(DropoutNet, device=device)
    h.set_optimizer(torch.optim.Adam, lr=1e-2)
    h.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    h.set_loss_fn(nn.functional.cross_entropy)
    h.set_train_loader(data, batch_size=32, shuffle=True)
    return h


def test_amp_scaler_and_device_mapping(cls_data):
    h = _make(cls_data)
    h.train(1, use_amp=True, progress_bar=False, seed=0)
    assert h.run_state.grad_scaler is not None
    h.save("gpu.pth")
    ckpt = torch.load("gpu.pth", weights_only=True, map_location="cpu")
    assert ckpt["grad_scaler_state_dict"]["scale"] == h.run_state.grad_scaler.get_scale()
    assert "cuda" in ckpt["rng_states"] and ckpt["MixedPrecision"]
    on_gpu = NNHandler.load("gpu.pth")  # the saved device
    assert on_gpu.device.type == "cuda" and next(on_gpu.module.parameters()).is_cuda
    assert on_gpu.run_state.grad_scaler.get_scale() == h.run_state.grad_scaler.get_scale()
    on_cpu = NNHandler.load("gpu.pth", device="cpu")
    assert not next(on_cpu.module.parameters()).is_cuda
    assert all(
        torch.equal(a.cpu(), b) for a, b in zip(h.module.parameters(), on_cpu.module.parameters())
    )
    assert all(t.device.type == "cpu" for s in on_cpu.optimizer.state.values() for t in s.values())


def test_exact_resume_on_gpu(cls_data):
    one_go = _make(cls_data)
    one_go.train(4, seed=0, progress_bar=False)
    first = _make(cls_data)
    first.train(2, seed=0, progress_bar=False)
    first.save("half.pth")
    torch.manual_seed(1)
    torch.cuda.manual_seed_all(1)
    resumed = NNHandler.load("half.pth")
    resumed.set_train_loader(cls_data, batch_size=32, shuffle=True)
    resumed.train(2, progress_bar=False)
    assert resumed.train_losses == one_go.train_losses
    assert all(
        torch.equal(a, b) for a, b in zip(one_go.module.parameters(), resumed.module.parameters())
    )
