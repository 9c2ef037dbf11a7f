"""The EMA of ``train(ema_decay=...)``: the original's semantics, against a hand computation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from models import BatchNormNet
from torch import nn

from nn_handler import Callback, NNHandler

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ema"


class StepRecorder(Callback):
    """After every training batch (one optimizer step each): the model's parameters and buffers,
    and the EMA's parameters."""

    def __init__(self):
        super().__init__()
        self.params: list[list[torch.Tensor]] = []
        self.buffers: list[list[torch.Tensor]] = []
        self.ema: list[list[torch.Tensor]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.params.append([p.detach().clone() for p in self.handler.module.parameters()])
        self.buffers.append([b.detach().clone() for b in self.handler.module.buffers()])
        self.ema.append([p.clone() for p in self.handler.ema.module.parameters()])


def _handler(data, lr=0.1):
    torch.manual_seed(0)
    h = NNHandler(BatchNormNet)
    h.set_optimizer(torch.optim.SGD, lr=lr, momentum=0.9)
    h.set_loss_fn(nn.functional.cross_entropy)
    h.set_train_loader(data, batch_size=32, shuffle=True)
    return h


def _hand_ema(initial, steps, decay):
    """torch_ema's default: start at the initial weights, decay min(decay, (1 + n) / (10 + n))."""
    shadow = [p.clone() for p in initial]
    for n, params in enumerate(steps, start=1):
        d = min(decay, (1 + n) / (10 + n))
        shadow = [d * s + (1 - d) * p for s, p in zip(shadow, params, strict=True)]
    return shadow


def test_ema_equals_a_hand_computation_from_the_initial_weights(cls_data):
    # decay 0.6: 12 warm-up updates ((1 + n) / (10 + n) < 0.6), then 6 at the full decay.
    h = _handler(cls_data)
    initial = [p.detach().clone() for p in h.module.parameters()]
    rec = StepRecorder()
    h.add_callback(rec)
    h.train(3, ema_decay=0.6, progress_bar=False)
    assert len(rec.params) == 18 and int(h.ema.n_averaged) == 18
    # The average after every step, from the first (where the initial weights still weigh 2/11).
    for step in range(1, 19):
        expected = _hand_ema(initial, rec.params[:step], 0.6)
        for got, want in zip(rec.ema[step - 1], expected, strict=True):
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5, msg=f"step {step}")
    for got, want in zip(h.ema.module.parameters(), expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    # Buffers are the model's own (not averaged): the BatchNorm statistics after the last step.
    for got, want in zip(h.ema.module.buffers(), rec.buffers[-1], strict=True):
        assert torch.equal(got, want)
    # Guard: the starting point matters at the first step, the warm-up at the last one.
    assert not torch.allclose(initial[0], rec.params[0][0], atol=1e-3)
    no_warmup = _hand_ema(rec.params[0], rec.params[1:], 0.6)  # AveragedModel's reading
    assert not torch.allclose(expected[0], no_warmup[0], atol=1e-4)


def test_predict_with_ema_uses_the_averaged_weights(cls_data):
    h = _handler(cls_data)
    initial = [p.detach().clone() for p in h.module.parameters()]
    rec = StepRecorder()
    h.add_callback(rec)
    h.train(1, ema_decay=0.9, progress_bar=False)
    reference = BatchNormNet()
    with torch.no_grad():
        for p, v in zip(reference.parameters(), _hand_ema(initial, rec.params, 0.9), strict=True):
            p.copy_(v)
        for b, v in zip(reference.buffers(), rec.buffers[-1], strict=True):
            b.copy_(v)
    x = cls_data.tensors[0]
    with torch.no_grad():
        want = reference.eval()(x)
    loader = torch.utils.data.DataLoader(x, batch_size=64)
    torch.testing.assert_close(torch.cat(h.predict(loader)), want, atol=1e-5, rtol=1e-5)
    raw = torch.cat(h.predict(loader, apply_ema=False))
    assert not torch.allclose(raw, want, atol=1e-3)


def test_ema_resumes_exactly_after_save_and_load(cls_data):
    one = _handler(cls_data)
    one.train(3, ema_decay=0.6, seed=0, progress_bar=False)

    first = _handler(cls_data)
    first.train(2, ema_decay=0.6, seed=0, progress_bar=False)
    first.save("half.pth")
    resumed = NNHandler.load("half.pth")
    assert int(resumed.ema.n_averaged) == 12
    resumed.set_train_loader(cls_data, batch_size=32, shuffle=True)
    resumed.train(1, ema_decay=0.6, progress_bar=False)
    assert int(resumed.ema.n_averaged) == 18
    for a, b in zip(resumed.ema.state_dict().values(), one.ema.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_ema_state_written_by_the_averaged_model_code_loads(monkeypatch, tmp_path):
    # ema_v1.pth was written by the AveragedModel-based EMA (tests/fixtures/ema/make_ema_v1.py).
    monkeypatch.syspath_prepend(str(FIXTURES))
    shutil.copy(FIXTURES / "ema_v1.pth", tmp_path / "ema_v1.pth")
    expected = json.loads((FIXTURES / "ema_v1.json").read_text())
    # The file names ema_models:NormNet; this test has not imported ema_models.
    h = NNHandler.load(tmp_path / "ema_v1.pth", safe_modules=["ema_models"])
    assert h.ema is not None and int(h.ema.n_averaged) == expected["updates"] == 6
    state = h.ema.state_dict()
    for key, value in expected["ema"].items():
        torch.testing.assert_close(state[key], torch.tensor(value).to(state[key].dtype))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=g)
    out = torch.cat(h.predict(torch.utils.data.DataLoader(x[:4], batch_size=4)))
    torch.testing.assert_close(out, torch.tensor(expected["outputs_with_ema"]))
    # Training on continues the update count (the 7th update uses the warmed-up decay).
    h.set_train_loader(torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    h.train(1, ema_decay=expected["ema_decay"], progress_bar=False)
    assert int(h.ema.n_averaged) == 9 and len(h.train_losses) == 3


def test_ema_decay_is_validated(cls_data):
    h = _handler(cls_data)
    for bad in (1.0, -0.1, 1.5, True):
        with pytest.raises(ValueError, match="ema_decay"):
            h.train(1, ema_decay=bad, progress_bar=False)
    h.train(1, progress_bar=False)
    assert h.ema is None


@pytest.mark.parametrize("scaler", [False, True], ids=["plain", "grad_scaler"])
def test_a_skipped_non_finite_step_still_updates_the_ema(cls_data, scaler):
    """A batch whose loss is not finite has no backward; its optimizer step (skipped outright
    under a GradScaler) still counts, and every counted step is followed by an EMA update."""
    calls = [0]

    def nan_at_third(outputs, targets):
        calls[0] += 1
        loss = nn.functional.cross_entropy(outputs, targets)
        return loss * float("nan") if calls[0] == 3 else loss

    h = _handler(cls_data)
    h.set_loss_fn(nan_at_third)
    initial = [p.detach().clone() for p in h.module.parameters()]
    rec = StepRecorder()
    h.add_callback(rec)
    kwargs = {}
    if scaler:
        from lightning.pytorch.plugins import MixedPrecision

        plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
        kwargs["trainer_kwargs"] = {"plugins": [plugin], "precision": None}
    with pytest.warns(RuntimeWarning, match="Non-finite training loss"):
        h.train(2, ema_decay=0.6, progress_bar=False, **kwargs)
    assert len(rec.params) == h.run_state.global_step == 12  # 6 batches, 6 steps per epoch
    assert int(h.ema.n_averaged) == 12
    for got, want in zip(h.ema.module.parameters(), _hand_ema(initial, rec.params, 0.6)):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
