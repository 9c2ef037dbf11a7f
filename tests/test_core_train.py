"""train(): model types, batch reading, logs and history, schedulers, EMA, AMP, metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torchmetrics
from models import AutoEncoder, DtypeProbe, TinyNet, accuracy
from torch import nn
from torch.utils.data import TensorDataset

from nn_handler import Callback, ModelType, NNHandler


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.epoch_logs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_logs.append((epoch, dict(logs)))


def make(data, model=TinyNet, loss=nn.functional.cross_entropy, lr=0.05, **kwargs):
    torch.manual_seed(0)
    handler = NNHandler(model, **kwargs)
    handler.set_optimizer(torch.optim.Adam, lr=lr)
    handler.set_loss_fn(loss)
    handler.set_train_loader(data, batch_size=32, shuffle=True)
    return handler


def test_classification_learns_and_logs_have_every_key(cls_data):
    handler = make(cls_data)
    handler.add_metric("accuracy", accuracy)
    handler.set_val_loader(cls_data, batch_size=64)
    rec = Recorder()
    handler.add_callback(rec)
    handler.train(2, progress_bar=False)
    handler.train(1, validate_every=2, progress_bar=False)

    assert [e for e, _ in rec.epoch_logs] == [0, 1, 2]
    keys = [
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "epoch_time",
        "lr",
        "lr_group_0",
    ]
    for i, (_, logs) in enumerate(rec.epoch_logs):
        assert list(logs) == keys
        assert logs["epoch"] == i + 1
        assert logs["lr"] == pytest.approx(0.05)
        assert logs["epoch_time"] > 0
    # Epoch 3 (validate_every=2): no validation that epoch -> NaN in logs, nothing in history.
    assert math.isnan(rec.epoch_logs[2][1]["val_loss"])
    assert len(handler.train_losses) == 3
    assert len(handler.val_losses) == 2
    assert len(handler.train_metrics_history["accuracy"]) == 3
    assert len(handler.val_metrics_history["accuracy"]) == 2
    assert handler.train_losses == [logs["loss"] for _, logs in rec.epoch_logs]
    assert handler.val_losses == [logs["val_loss"] for _, logs in rec.epoch_logs[:2]]
    assert handler.train_losses[-1] < handler.train_losses[0]


def test_no_validation_loader_trains_without_validation(cls_data):
    handler = make(cls_data)
    handler.train(1, progress_bar=False)  # SPEC §6.1: not an error
    assert len(handler.train_losses) == 1
    assert handler.val_losses == []


def test_validate_every_zero_disables_validation(cls_data):
    handler = make(cls_data)
    handler.set_val_loader(cls_data, batch_size=64)
    handler.train(2, validate_every=0, progress_bar=False)
    assert handler.val_losses == []


def test_regression_learns(reg_data):
    handler = make(reg_data, loss=nn.functional.mse_loss, out_features=1, lr=0.02)
    handler.train(5, progress_bar=False)
    assert handler.train_losses[-1] < 0.5 * handler.train_losses[0]


def test_generative_uses_inputs_as_targets():
    x = torch.randn(96, 8, generator=torch.Generator().manual_seed(3))
    calls = []

    def recon(outputs, targets):
        calls.append(targets)
        return nn.functional.mse_loss(outputs, targets)

    handler = make(
        TensorDataset(x), model=AutoEncoder, loss=recon, lr=0.02, model_type="generative"
    )
    handler.train(4, progress_bar=False)
    assert handler.train_losses[-1] < handler.train_losses[0]
    assert all(t.shape == (32, 8) for t in calls)
    # A bare-tensor dataset is accepted for generative models.
    bare = make(x, model=AutoEncoder, loss=recon, model_type=ModelType.GENERATIVE)
    bare.train(1, progress_bar=False)
    assert len(bare.train_losses) == 1


class _ConstSDE:
    T, epsilon = 1.0, 1e-5

    def sigma(self, t):
        return torch.ones_like(t)


def test_score_based_calls_loss_with_sde_model_device():
    seen = {}

    class Score(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, t, x):
            return self.lin(torch.cat([t[:, None], x], dim=1))

    def dsm(samples, sde, model, device, scale=1.0):
        seen.update(sde=sde, device=device, scale=scale)
        t = torch.rand(samples.shape[0])
        return scale * ((model(t, samples) + samples) ** 2).mean()

    data = torch.randn(64, 2)
    handler = NNHandler(Score, model_type="score_based")
    handler.set_optimizer(torch.optim.Adam, lr=0.05)
    handler.set_loss_fn(dsm, scale=2.0)
    handler.set_train_loader(data, batch_size=16)
    with pytest.raises(RuntimeError, match="SDE"):
        handler.train(1, progress_bar=False)
    sde = _ConstSDE()
    handler.runtime.sde = sde  # a minimal stand-in, not a full SDE: bypass set_sde checks
    handler.train(3, progress_bar=False)
    assert seen["sde"] is sde and seen["scale"] == 2.0
    assert torch.device(seen["device"]).type == "cpu"
    assert handler.train_losses[-1] < handler.train_losses[0]


def test_bare_tensor_batch_for_classification_raises(cls_data):
    handler = make(cls_data)
    handler.set_train_loader(cls_data.tensors[0], batch_size=32)
    with pytest.raises(ValueError, match="classification batch must be a sequence"):
        handler.train(1, progress_bar=False)


def test_extra_batch_items_bind_to_forward_parameters():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 2)
            self.masks = []

        def forward(self, x, mask=None):
            self.masks.append(mask)
            return self.lin(x * mask)

    x, y, m = torch.randn(32, 4), torch.randint(0, 2, (32,)), torch.ones(32, 4)
    handler = make(TensorDataset(x, y, m, m), model=Masked)
    with pytest.warns(UserWarning, match="excess items are ignored"):
        handler.train(1, progress_bar=False)
    assert all(mask is not None and mask.shape == (32, 4) for mask in handler.module.masks)


def test_train_fn_replaces_forward_during_training(cls_data):
    class WithTrainFn(TinyNet):
        calls = 0

        def train_fn(self, x):
            WithTrainFn.calls += 1
            return self(x) * 2

    handler = make(cls_data, model=WithTrainFn)
    handler.train(1, progress_bar=False)
    assert WithTrainFn.calls == 6  # 192 / 32 batches
    handler.predict(handler.train_loader)
    assert WithTrainFn.calls == 6  # inference uses forward


def test_tuple_loss_uses_first_item(cls_data):
    def loss(outputs, targets):
        ce = nn.functional.cross_entropy(outputs, targets)
        return ce, {"ce": ce.detach()}

    handler = make(cls_data, loss=loss)
    handler.train(1, progress_bar=False)
    assert handler.train_losses[0] > 0


def test_non_scalar_loss_raises(cls_data):
    handler = make(cls_data, loss=lambda o, t: nn.functional.cross_entropy(o, t, reduction="none"))
    with pytest.raises(ValueError, match="must be a scalar"):
        handler.train(1, progress_bar=False)


def test_non_finite_loss_skips_the_step_and_warns(cls_data):
    state = {"n": 0}

    def sometimes_nan(outputs, targets):
        state["n"] += 1
        loss = nn.functional.cross_entropy(outputs, targets)
        return loss * float("nan") if state["n"] == 2 else loss

    handler = make(cls_data, loss=sometimes_nan)
    with pytest.warns(RuntimeWarning, match="Non-finite training loss"):
        handler.train(1, progress_bar=False)
    assert math.isfinite(handler.train_losses[0])
    assert all(torch.isfinite(p).all() for p in handler.module.parameters())


def test_pass_epoch_to_loss(cls_data):
    epochs = []

    def loss(outputs, targets, epoch):
        epochs.append(epoch)
        return nn.functional.cross_entropy(outputs, targets)

    handler = make(cls_data, loss=loss)
    handler.set_loss_fn(loss, pass_epoch_to_loss=True)
    handler.train(2, progress_bar=False)
    assert sorted(set(epochs)) == [0, 1]
    with pytest.warns(UserWarning, match="no 'epoch' parameter"):
        handler.set_loss_fn(nn.functional.cross_entropy, pass_epoch_to_loss=True)


def test_scheduler_state_carries_across_train_calls(cls_data):
    handler = make(cls_data)
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    rec = Recorder()
    handler.add_callback(rec)
    handler.train(2, progress_bar=False)
    handler.train(1, progress_bar=False)
    assert [logs["lr"] for _, logs in rec.epoch_logs] == pytest.approx([0.05, 0.025, 0.0125])
    assert handler.optimizer.param_groups[0]["lr"] == pytest.approx(0.00625)


def test_reduce_on_plateau_steps_on_val_loss(cls_data):
    # A constant loss never improves -> the plateau scheduler halves the lr.
    handler = make(cls_data, loss=lambda outputs, targets: (outputs * 0).sum() + 1.0)
    handler.set_scheduler(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=0, factor=0.5)
    handler.set_val_loader(cls_data, batch_size=64)
    handler.train(3, progress_bar=False)
    # epoch 1 sets the best value; epochs 2 and 3 do not improve on it
    assert handler.optimizer.param_groups[0]["lr"] == pytest.approx(0.0125)


def test_use_amp_on_cpu_warns_and_trains_in_fp32(cls_data):
    # Mixed precision keeps float32 weights; what it changes is the dtype the forward computes in.
    handler = make(cls_data, model=DtypeProbe)
    with pytest.warns(UserWarning, match="use_amp=True needs a CUDA device"):
        handler.train(1, use_amp=True, progress_bar=False)
    assert handler.module.train_output_dtypes == [torch.float32] * 6
    assert handler.module.layer.weight.dtype == torch.float32


def test_ema_weights_are_used_by_predict(cls_data):
    handler = make(cls_data, lr=0.1)
    handler.train(2, ema_decay=0.9, progress_bar=False)
    assert handler.ema is not None
    raw = torch.cat(handler.predict(handler.train_loader, apply_ema=False))
    ema = torch.cat(handler.predict(handler.train_loader, apply_ema=True))
    assert not torch.allclose(raw, ema)
    x = cls_data.tensors[0]
    with torch.no_grad():
        manual = handler.ema.module(x)
    loader = torch.utils.data.DataLoader(cls_data, batch_size=32)
    assert torch.allclose(torch.cat(handler.predict(loader)), manual, atol=1e-6)


def test_torchmetric_is_exact_over_unequal_batches(cls_data):
    handler = make(cls_data)
    handler.add_metric("acc", torchmetrics.classification.MulticlassAccuracy(3, average="micro"))
    handler.set_val_loader(cls_data, batch_size=50)  # 50, 50, 50, 42
    handler.train(1, progress_bar=False)
    x, y = cls_data.tensors
    with torch.no_grad():
        expected = (handler.module(x).argmax(1) == y).float().mean().item()
    assert handler.val_metrics_history["acc"][0] == pytest.approx(expected, abs=1e-6)


def test_plain_metric_is_the_mean_of_batch_values(cls_data):
    sizes = []

    def batch_size(outputs, targets):
        sizes.append(len(targets))
        return float(len(targets))

    handler = make(cls_data)
    handler.add_metric("bs", batch_size)
    handler.set_val_loader(cls_data, batch_size=50)
    handler.train(1, progress_bar=False)
    assert handler.val_metrics_history["bs"] == [pytest.approx((50 + 50 + 50 + 42) / 4)]


def test_trainer_kwargs_pass_through_and_validation(cls_data):
    handler = make(cls_data)
    handler.train(2, progress_bar=False, trainer_kwargs={"limit_train_batches": 2})
    assert handler.run_state.global_step == 4
    with pytest.raises(TypeError, match="lightning.Trainer does not take.*max_epoch"):
        handler.train(1, trainer_kwargs={"max_epoch": 3})
    with pytest.raises(ValueError, match="set by NNHandler.train"):
        handler.train(1, trainer_kwargs={"max_epochs": 3})


def test_train_argument_errors(cls_data):
    handler = make(cls_data)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        handler.train(0)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        handler.train(1, gradient_accumulation_steps=0)
    with pytest.raises(ValueError, match="ema_decay"):
        handler.train(1, ema_decay=1.5)
    with pytest.raises(ValueError, match="gradient_clipping_norm"):
        handler.train(1, gradient_clipping_norm=-1.0)
    assert handler.train_losses == []


def test_train_before_configuration_names_every_missing_piece():
    handler = NNHandler(TinyNet)
    with pytest.raises(RuntimeError, match=r"optimizer.*loss function.*training data"):
        handler.train(1)


def test_keep_eval_on_module_freezes_batchnorm_statistics(cls_data):
    class BNNet(TinyNet):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(8)

        def forward(self, x):
            return super().forward(self.bn(x))

    handler = make(cls_data, model=BNNet)
    handler.keep_eval_on_module(handler.module.bn)
    before = handler.module.bn.running_mean.clone()
    handler.set_val_loader(cls_data, batch_size=64)
    handler.train(2, progress_bar=False)
    assert torch.equal(handler.module.bn.running_mean, before)
    handler.keep_eval_on_module(handler.module.bn, activate=False)
    handler.train(1, progress_bar=False)
    assert not torch.equal(handler.module.bn.running_mean, before)


def test_debug_print_interval_logs_batch_losses(cls_data, tmp_path):
    handler = make(cls_data, logger_mode="file", logger_filename=str(tmp_path / "run.log"))
    handler.train(1, progress_bar=False, debug_print_interval=2)
    text = (tmp_path / "run.log").read_text()
    assert text.count("batch ") == 3  # batches 0, 2, 4 of 6


def test_fully_frozen_model_gets_a_clear_error(cls_data):
    handler = make(cls_data)
    handler.freeze_module(handler.module)
    with pytest.raises(RuntimeError, match="does not require grad"):
        handler.train(1, progress_bar=False)


def test_stop_flag_set_by_a_lightning_callback_stops_training(cls_data):
    import lightning as L

    handler = make(cls_data)

    class StopAfterTwo(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                handler._stop_training = True

    handler.add_callback(StopAfterTwo())
    handler.train(5, progress_bar=False)
    assert len(handler.train_losses) == 2
    handler.train(1, progress_bar=False)  # the flag is reset by the next call
    assert len(handler.train_losses) == 3
