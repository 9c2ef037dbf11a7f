"""The built-in native callbacks: decisions, files written, values logged, state round-trips."""

from __future__ import annotations

import math
import os
import re
import sys
import types

import pytest
import torch
from models import TinyNet, accuracy
from torch import nn
from torch.utils.data import TensorDataset

from nn_handler import (
    BasePredictionVisualizer,
    Callback,
    CudaGarbageCollector,
    EarlyStopping,
    EpochTimer,
    ImagePredictionVisualizer,
    LearningRateMonitor,
    ModelCheckpoint,
    NNHandler,
    ParameterNormMonitor,
    ParamScheduler,
    ProgressMonitor,
    SimpleGarbageCollector,
    TensorBoardLogger,
    WandbLogger,
)


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(24, 8, generator=g), torch.randint(0, 3, (24,), generator=g))


def make_handler(data, val=True, model=TinyNet, loss=nn.functional.cross_entropy):
    torch.manual_seed(0)
    handler = NNHandler(model)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(loss)
    handler.set_train_loader(data, batch_size=12)
    if val:
        handler.set_val_loader(data, batch_size=24)
    return handler


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Script(Callback):
    """Overwrites ``logs[key]`` with a scripted value per epoch and snapshots the weights."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, values
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(snapshot(self.handler.module))


class LogsRecorder(Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(dict(logs))


# ------------------------------------------------------------------ EarlyStopping
def test_early_stopping_stops_at_predicted_epoch_and_restores_best_weights(data):
    handler = make_handler(data)
    script = Script("val_loss", [1.0, 0.5, 0.6, 0.55, 0.7, 0.4, 0.3, 0.2])
    stop = EarlyStopping(patience=2, restore_best_weights=True)
    handler.add_callback(script)
    handler.add_callback(stop)
    handler.train(8, progress_bar=False)
    # Best at epoch 2 (0.5); epochs 3 and 4 do not improve -> stop after epoch 4.
    assert len(handler.train_losses) == 4
    assert (stop.stopped_epoch, stop.best_epoch, stop.best, stop.wait) == (4, 2, 0.5, 2)
    assert same_weights(snapshot(handler.module), script.weights[1])
    assert not same_weights(script.weights[1], script.weights[3])


def test_early_stopping_min_delta_and_max_mode(data):
    handler = make_handler(data, val=False)
    handler.add_callback(Script("score", [0.5, 0.55, 0.65, 0.7, 0.71, 0.9, 1.0]))
    stop = EarlyStopping(monitor="score", mode="max", min_delta=0.1, patience=2)
    handler.add_callback(stop)
    handler.train(7, progress_bar=False)
    # 0.55 and 0.7/0.71 are within min_delta of the best (0.5, then 0.65).
    assert len(handler.train_losses) == 5
    assert (stop.stopped_epoch, stop.best_epoch, stop.best) == (5, 3, 0.65)


def test_early_stopping_skips_epochs_without_validation(data):
    handler = make_handler(data)
    nan = math.nan
    handler.add_callback(Script("val_loss", [nan, 1.0, nan, 2.0, nan, 3.0]))
    stop = EarlyStopping(patience=1)
    handler.add_callback(stop)
    handler.train(6, validate_every=2, progress_bar=False)
    assert len(handler.train_losses) == 4 and stop.stopped_epoch == 4


def test_unknown_monitored_key_warns_once(data):
    handler = make_handler(data)
    stop = EarlyStopping(monitor="val_accuracy", patience=0)
    handler.add_callback(stop)
    with pytest.warns(RuntimeWarning, match="'val_accuracy' is not in the epoch logs") as got:
        handler.train(3, progress_bar=False)
    assert sum("val_accuracy" in str(w.message) for w in got) == 1
    assert len(handler.train_losses) == 3


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        EarlyStopping(mode="auto")
    with pytest.raises(ValueError, match="patience must be"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        ModelCheckpoint(mode="best")
    with pytest.raises(TypeError, match="schedule must be a callable"):
        ParamScheduler("lr", schedule=0.1)
    with pytest.raises(ValueError, match="use_fixed_batch=True needs fixed_batch"):
        ImagePredictionVisualizer(use_fixed_batch=True)
    with pytest.raises(ValueError, match="norm_type must be a number or 'inf'"):
        ParameterNormMonitor(norm_type="fro")


# ---------------------------------------------------------------- ModelCheckpoint
def test_model_checkpoint_writes_exactly_the_improving_epochs(data):
    handler = make_handler(data)
    script = Script("val_loss", [1.0, 0.8, 0.9, 0.7])
    ckpt = ModelCheckpoint("ckpt/model_{epoch:02d}_{val_loss:.2f}", save_weights_only=True)
    handler.add_callback(script)
    handler.add_callback(ckpt)
    handler.train(4, progress_bar=False)
    assert sorted(os.listdir("ckpt")) == [
        "model_01_1.00.pth",
        "model_02_0.80.pth",
        "model_04_0.70.pth",
    ]
    assert ckpt.best_path == os.path.join("ckpt", "model_04_0.70.pth") and ckpt.best == 0.7
    saved = torch.load("ckpt/model_04_0.70.pth", weights_only=True)
    assert same_weights(saved, script.weights[3])
    assert same_weights(torch.load("ckpt/model_02_0.80.pth", weights_only=True), script.weights[1])


def test_model_checkpoint_bare_name_every_epoch_and_directory_default(data):
    handler = make_handler(data)
    every = ModelCheckpoint("last", save_best_only=False, save_weights_only=True)
    best = ModelCheckpoint(save_weights_only=True)  # filepath="." -> ./best_model.pth
    handler.add_callback(every)
    handler.add_callback(best)
    handler.train(2, progress_bar=False)
    assert sorted(os.listdir(".")) == ["best_model.pth", "last.pth"]
    assert same_weights(torch.load("last.pth", weights_only=True), snapshot(handler.module))


def test_model_checkpoint_bad_template_warns_once_and_falls_back(data):
    handler = make_handler(data, val=False)
    ckpt = ModelCheckpoint("out/m_{nope}", save_best_only=False, save_weights_only=True)
    handler.add_callback(ckpt)
    with pytest.warns(RuntimeWarning, match="cannot format filepath 'out/m_{nope}'") as got:
        handler.train(2, progress_bar=False)
    assert sum("cannot format" in str(w.message) for w in got) == 1
    assert sorted(os.listdir("out")) == ["model_epoch01.pth", "model_epoch02.pth"]


def test_model_checkpoint_full_save_loads_back(data):
    handler = make_handler(data)
    handler.add_metric("acc", accuracy)
    handler.add_callback(ModelCheckpoint("best", monitor="val_acc", mode="max"))
    handler.train(2, progress_bar=False)
    assert os.path.isfile("best.pth")
    loaded = NNHandler.load("best.pth", callbacks=[ModelCheckpoint("best", "val_acc", "max")])
    best_epoch = max(range(2), key=lambda i: (handler.val_metrics_history["acc"][i], -i))
    assert loaded.train_losses == handler.train_losses[: best_epoch + 1]


# -------------------------------------------------------------------- TensorBoard
def test_tensorboard_scalars_equal_the_history(data):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    handler = make_handler(data)
    handler.add_metric("acc", accuracy)
    handler.add_callback(EpochTimer())  # runs first: its key reaches the logger
    handler.add_callback(TensorBoardLogger(log_dir="tb"))
    handler.train(3, validate_every=2, progress_bar=False)

    events = EventAccumulator("tb")
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss", "val_loss", "acc", "val_acc", "lr", "lr_group_0", "epoch_time_sec"} <= tags

    def series(tag):
        return [(e.step, e.value) for e in events.Scalars(tag)]

    assert [s for s, _ in series("loss")] == [1, 2, 3]
    assert [v for _, v in series("loss")] == pytest.approx(handler.train_losses, rel=1e-6)
    assert [v for _, v in series("acc")] == pytest.approx(
        handler.train_metrics_history["acc"], rel=1e-6
    )
    # Validation ran only in epoch 2: one val_loss point, none for the NaN epochs.
    assert [s for s, _ in series("val_loss")] == [2]
    assert series("val_loss")[0][1] == pytest.approx(handler.val_losses[0], rel=1e-6)
    assert [v for _, v in series("lr")] == pytest.approx([0.1] * 3)
    # Lightning's own logger went to its own run inside log_dir, not into the cwd.
    assert os.path.isdir(os.path.join("tb", "lightning")) and not os.path.exists("lightning_logs")


def test_tensorboard_writes_one_series_per_value(data):
    """Each value is one series: the Lightning run beside the native one (for Lightning's own
    callbacks) does not get the epoch values again."""
    from lightning.pytorch.callbacks import LearningRateMonitor as PLLearningRateMonitor
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    handler = make_handler(data)
    handler.add_metric("acc", accuracy)
    handler.add_callback(TensorBoardLogger(log_dir="tb"))
    handler.add_callback(PLLearningRateMonitor(logging_interval="epoch"))
    handler.train(2, progress_bar=False)

    series: dict[str, list[str]] = {}
    for run in ("tb", os.path.join("tb", "lightning")):
        events = EventAccumulator(run)
        events.Reload()
        for tag in events.Tags()["scalars"]:
            series.setdefault(tag, []).append(run)
    assert {"loss", "val_loss", "acc", "val_acc", "lr", "lr-SGD"} <= set(series)
    assert {tag: runs for tag, runs in series.items() if len(runs) > 1} == {}
    assert series["loss"] == ["tb"] and series["lr-SGD"] == [os.path.join("tb", "lightning")]


# ---------------------------------------------------------------------- WandbLogger
def test_wandb_logger_without_wandb_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(ImportError, match="pip install wandb"):
        WandbLogger(project="p")


def test_wandb_logger_logs_epochs_to_a_run(data, monkeypatch):
    logged, finished = [], []
    run = types.SimpleNamespace(
        id="run-42",
        log=lambda values, step: logged.append((step, values)),
        finish=lambda: finished.append(True),
    )
    fake = types.SimpleNamespace(init=lambda **kw: run, watch=lambda *a, **kw: None)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    handler = make_handler(data)
    cb = WandbLogger(project="p")
    handler.add_callback(cb)
    handler.train(2, progress_bar=False)
    assert [s for s, _ in logged] == [1, 2] and finished == [True]
    assert [v["loss"] for _, v in logged] == handler.train_losses
    assert [v["val_loss"] for _, v in logged] == handler.val_losses
    fresh = WandbLogger(project="p")
    fresh.load_state_dict(cb.state_dict())
    assert fresh.run_id == "run-42"


def test_wandb_logger_default_config_is_the_handlers_setup(data, monkeypatch):
    """The original's keys, read from the public setup (not attributes that no longer exist)."""
    inits = []
    run = types.SimpleNamespace(id="r", log=lambda values, step: None, finish=lambda: None)
    fake = types.SimpleNamespace(init=lambda **kw: inits.append(kw) or run, watch=lambda *a, **k: 0)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    torch.manual_seed(0)
    handler = NNHandler(TinyNet, hidden=7)
    handler.set_optimizer(torch.optim.SGD, lr=0.1, momentum=0.5)
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=2)
    handler.set_loss_fn(nn.functional.cross_entropy, label_smoothing=0.0)
    handler.set_train_loader(data, batch_size=12)
    handler.add_callback(WandbLogger(project="p", log_model_topology=False))
    handler.train(1, progress_bar=False, seed=3)
    assert inits[0]["config"] == {
        "hidden": 7,
        "model_class": "TinyNet",
        "model_type": "CLASSIFICATION",
        "lr": 0.1,
        "momentum": 0.5,
        "optimizer_class": "SGD",
        "step_size": 2,
        "scheduler_class": "StepLR",
        "loss_fn": "cross_entropy",
        "label_smoothing": 0.0,
        "device": "cpu",
        "seed": 3,
    }
    given = WandbLogger(project="p", config={"mine": 1}, log_model_topology=False)
    handler.add_callback(given)
    handler.train(1, progress_bar=False)
    assert inits[-1]["config"] == {"mine": 1}
    assert WandbLogger(project="p").handler_config() == {}  # not added to a handler


# ------------------------------------------------------------ schedulers & monitors
def test_param_scheduler_sets_optimizer_value_and_logs_show_it(data):
    handler = make_handler(data, val=False)
    sched = ParamScheduler("lr", lambda epoch: 0.1 / (epoch + 1))
    lrs = LearningRateMonitor()
    handler.add_callback(sched)
    handler.add_callback(lrs)
    handler.train(3, progress_bar=False)
    expected = [0.1, 0.05, 0.1 / 3]
    assert [r[0] for r in lrs.lrs] == pytest.approx(expected)
    assert handler.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / 3)
    assert [v for _, v in sched.values] == pytest.approx(expected)


def test_param_scheduler_sets_a_model_attribute_from_a_schedule_object(data):
    class NoisyNet(TinyNet):
        noise = 1.0

    class Halving:
        def get_value(self, epoch):
            return 0.5**epoch

    handler = make_handler(data, val=False, model=NoisyNet)
    handler.add_callback(ParamScheduler("noise", Halving()))
    handler.add_callback(bad := ParamScheduler("no_such_thing", lambda e: e))
    with pytest.warns(
        RuntimeWarning, match=r"ParamScheduler\.on_epoch_begin raised AttributeError"
    ):
        handler.train(3, progress_bar=False)
    assert handler.module.noise == 0.25
    assert bad.values == []


def test_parameter_norm_epoch_timer_lr_monitor_add_to_logs(data):
    handler = make_handler(data, val=False)
    norm, norm_inf, timer = (
        ParameterNormMonitor(log_freq_epoch=2),
        ParameterNormMonitor(norm_type="inf"),
        EpochTimer(),
    )
    rec = LogsRecorder()
    for cb in (norm, norm_inf, timer, LearningRateMonitor(), rec):
        handler.add_callback(cb)
    handler.train(4, progress_bar=False)
    params = [p.detach() for p in handler.module.parameters()]
    total = torch.sqrt(sum((p**2).sum() for p in params))
    assert [e for e, _ in norm.norms] == [2, 4]
    assert norm.norms[-1][1] == pytest.approx(float(total), rel=1e-5)
    assert ["param_norm_2" in logs for logs in rec.logs] == [False, True, False, True]
    assert rec.logs[-1]["param_norm_inf"] == pytest.approx(
        max(float(p.abs().max()) for p in params)
    )
    assert [logs["epoch_time_sec"] for logs in rec.logs] == timer.times
    assert all(t > 0 for t in timer.times)


def test_progress_monitor_prints_one_line_per_epoch(data, capsys):
    handler = make_handler(data)
    handler.add_callback(ProgressMonitor())
    handler.train(2, validate_every=2, progress_bar=False)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("E")]
    assert len(lines) == 2
    assert re.fullmatch(
        r"E1/2 \[\d+\.\d\ds\] Train Loss: \d\.\d{4}e[+-]\d\d \| LR: 1\.00e-01", lines[0]
    )
    loss, val = handler.train_losses[1], handler.val_losses[0]
    assert lines[1].endswith(f"Train Loss: {loss:.4e} | Val Loss: {val:.4e} | LR: 1.00e-01")


def test_garbage_collectors_run_every_n_epochs(data):
    handler = make_handler(data, val=False)
    simple, cuda = SimpleGarbageCollector(collect_freq_epoch=2), CudaGarbageCollector()
    handler.add_callback(simple)
    handler.add_callback(cuda)
    handler.train(4, progress_bar=False)
    assert simple.collections == 2
    assert cuda.collections == (4 if torch.cuda.is_available() else 0)


# -------------------------------------------------------------------- visualizers
class Denoiser(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.conv(x))


def test_image_visualizer_writes_png_grids_every_n_epochs(data):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 1, 6, 6, generator=g)
    handler = make_handler(
        TensorDataset(images, images), val=False, model=Denoiser, loss=nn.functional.mse_loss
    )
    seen = []

    modes = []

    def predict(model, inputs):
        modes.append(model.training)
        return model(inputs)

    class Capture(BasePredictionVisualizer):
        def _visualize_batch(self, inputs, targets, predictions, epoch):
            # Called after the prediction, with the training modes already restored.
            seen.append((epoch, inputs.shape, predictions.clone(), handler.module.drop.training))

    viz = ImagePredictionVisualizer(
        log_freq_epoch=2,
        num_samples=3,
        save_dir="viz",
        use_fixed_batch=True,
        fixed_batch=(images[:4], images[:4]),
    )
    handler.add_callback(viz)
    handler.add_callback(
        Capture(
            log_freq_epoch=4,
            num_samples=3,
            use_fixed_batch=True,
            fixed_batch=images[:4],
            get_predictions_fn=predict,
        )
    )
    handler.train(4, progress_bar=False)
    assert sorted(os.listdir("viz")) == ["epoch_0002_predictions.png", "epoch_0004_predictions.png"]
    for name in os.listdir("viz"):
        with open(os.path.join("viz", name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    epoch, shape, predictions, was_training = seen[0]
    assert (epoch, shape, was_training, modes) == (4, (3, 1, 6, 6), True, [False])
    handler.module.eval()
    with torch.no_grad():  # eval mode (no dropout) on the final weights
        assert torch.equal(predictions, handler.module(images[:3]))
    assert len(seen) == 1


def test_visualizer_without_data_warns_once(data):
    class Nothing(BasePredictionVisualizer):
        def _visualize_batch(self, inputs, targets, predictions, epoch):
            raise AssertionError("no batch, so never called")

    handler = make_handler(data, val=False)
    handler.add_callback(Nothing(log_freq_epoch=1))
    with pytest.warns(RuntimeWarning, match="no batch to visualize") as got:
        handler.train(2, progress_bar=False)
    assert sum("no batch to visualize" in str(w.message) for w in got) == 1


# -------------------------------------------------------------------------- state
def test_states_round_trip_into_new_instances(data):
    handler = make_handler(data)
    stop = EarlyStopping(monitor="loss", patience=50, restore_best_weights=True)
    ckpt = ModelCheckpoint("m", monitor="loss", save_weights_only=True)
    cbs = [
        stop,
        ckpt,
        LearningRateMonitor(),
        EpochTimer(),
        ParameterNormMonitor(),
        ParamScheduler("momentum", lambda e: 0.5),
    ]
    for cb in cbs:
        handler.add_callback(cb)
    handler.train(2, progress_bar=False)
    fresh = [
        EarlyStopping(monitor="loss", patience=50, restore_best_weights=True),
        ModelCheckpoint("m", monitor="loss", save_weights_only=True),
        LearningRateMonitor(),
        EpochTimer(),
        ParameterNormMonitor(),
        ParamScheduler("momentum", lambda e: 0.5),
    ]
    for old, new in zip(cbs, fresh):
        new.load_state_dict(old.state_dict())
        assert new.state_dict().keys() == old.state_dict().keys()
    assert (fresh[0].best, fresh[0].wait, fresh[0].best_epoch) == (
        stop.best,
        stop.wait,
        stop.best_epoch,
    )
    assert same_weights(fresh[0].best_weights, stop.best_weights)
    assert (fresh[1].best, fresh[1].best_path) == (ckpt.best, ckpt.best_path)
    assert fresh[2].lrs == cbs[2].lrs and fresh[3].times == cbs[3].times
    assert fresh[4].norms == cbs[4].norms and fresh[5].values == cbs[5].values
    # A state saved for another monitor is not applied to this callback.
    with pytest.warns(RuntimeWarning, match="saved state monitors 'loss'"):
        EarlyStopping(monitor="val_loss").load_state_dict(stop.state_dict())


def test_callback_states_round_trip_through_save_and_load(data):
    handler = make_handler(data)
    # mode="max" on a falling val_loss: the best stays at epoch 1 only if the count carries on.
    stop = EarlyStopping(patience=50, mode="max")
    timer = EpochTimer()
    handler.add_callback(stop)
    handler.add_callback(timer)
    handler.train(2, progress_bar=False)
    handler.save("h.pth")
    supplied = [EarlyStopping(patience=50, mode="max"), EpochTimer()]
    loaded = NNHandler.load("h.pth", callbacks=supplied)
    restored = {type(cb).__name__: cb for cb in loaded.callbacks}
    assert restored["EarlyStopping"] is supplied[0] and supplied[0].handler is loaded
    assert (supplied[0].best, supplied[0].best_epoch, supplied[0].wait) == (
        stop.best,
        stop.best_epoch,
        stop.wait,
    )
    assert supplied[1].times == timer.times
    # The restored count continues in the next train() call (the run had not stopped).
    loaded.set_train_loader(data, batch_size=12)
    loaded.set_val_loader(data, batch_size=24)
    loaded.train(1, progress_bar=False)
    assert loaded.val_losses[0] > loaded.val_losses[1] > loaded.val_losses[2]
    assert (supplied[0].best, supplied[0].best_epoch, supplied[0].wait) == (
        loaded.val_losses[0],
        1,
        2,
    )
    assert len(supplied[1].times) == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_builtins_on_cuda(data):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 1, 6, 6, generator=g)
    torch.manual_seed(0)
    handler = NNHandler(Denoiser, device="cuda")
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(nn.functional.mse_loss)
    handler.set_train_loader(TensorDataset(images, images), batch_size=4)
    script = Script("val_loss", [1.0, 0.5, 0.6, 0.7, 0.8])
    stop = EarlyStopping(patience=2, restore_best_weights=True)
    norm, gc_cuda = ParameterNormMonitor(), CudaGarbageCollector()
    viz = ImagePredictionVisualizer(
        log_freq_epoch=1, num_samples=2, save_dir="viz", use_fixed_batch=True, fixed_batch=images
    )
    for cb in (
        script,
        stop,
        norm,
        gc_cuda,
        viz,
        ModelCheckpoint("w", "val_loss", save_weights_only=True),
    ):
        handler.add_callback(cb)
    handler.train(5, progress_bar=False)
    assert len(handler.train_losses) == 4 and stop.stopped_epoch == 4
    assert next(iter(stop.best_weights.values())).device.type == "cuda"
    on_cpu = {k: v.cpu() for k, v in script.weights[1].items()}
    assert same_weights({k: v.cpu() for k, v in snapshot(handler.module).items()}, on_cpu)
    assert gc_cuda.collections == 4 and len(norm.norms) == 4
    assert len(os.listdir("viz")) == 4
    saved = torch.load("w.pth", weights_only=True, map_location="cpu")
    assert same_weights(saved, on_cpu)
    restored = EarlyStopping(patience=2, restore_best_weights=True)
    restored.set_handler(handler)
    restored.load_state_dict(stop.state_dict())  # saved on the CPU, back on the model's device
    device = next(handler.module.parameters()).device
    assert next(iter(restored.best_weights.values())).device == device


def test_restored_callbacks_keep_their_constructor_arguments(cls_data, tmp_path):
    from models import TinyNet

    from nn_handler import EarlyStopping, NNHandler

    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.set_train_loader(cls_data, batch_size=64)
    handler.add_callback(EarlyStopping(monitor="loss", patience=3, mode="min"))
    handler.train(1, progress_bar=False)
    handler.save(str(tmp_path / "h.pth"))
    restored = NNHandler.load(str(tmp_path / "h.pth"))
    (stopper,) = [c for c in restored.callbacks if isinstance(c, EarlyStopping)]
    assert (stopper.monitor, stopper.patience) == ("loss", 3)
    assert stopper.handler is restored
