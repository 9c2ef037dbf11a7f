"""Native callbacks driven by Lightning: hook order, logs contract, errors, both bridges."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from models import TinyNet, accuracy
from nn_handler.adapters.hooks.callback_bridge import NativeCallbackBridge, restore_callback_states
from nn_handler.adapters.hooks.epoch_logs import EpochLogs
from torch import nn
from torch.utils.data import TensorDataset

from nn_handler import Callback, NNHandler
from nn_handler.callbacks.base import HOOKS

EPOCH_HOOKS = {"on_epoch_begin", "on_epoch_end"}
TRAIN_SIZES, VAL_SIZES = [8, 8, 4], [16, 4]
BATCH_HOOKS = {
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_val_batch_begin",
    "on_val_batch_end",
}


class Recorder(Callback):
    """Records every hook call as ``(hook, positional_arg_or_None, copy_of_logs)``."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[str, int | None, dict]] = []


def _recording_hook(name):
    if name in EPOCH_HOOKS | BATCH_HOOKS:

        def hook(self, value, logs=None):
            self.calls.append((name, value, dict(logs)))

    else:

        def hook(self, logs=None):
            self.calls.append((name, None, dict(logs)))

    return hook


for _name in HOOKS:
    setattr(Recorder, _name, _recording_hook(_name))


@pytest.fixture
def small_data():
    """20 samples: 3 training batches of 8/8/4 and 2 validation batches of 16/4."""
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(20, 8, generator=g), torch.randint(0, 3, (20,), generator=g))


def make_handler(data, metric=True, val=True):
    torch.manual_seed(0)
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(nn.functional.cross_entropy)
    handler.set_train_loader(data, batch_size=8)
    if val:
        handler.set_val_loader(data, batch_size=16)
    if metric:
        handler.add_metric("acc", accuracy)
    return handler


def expected_sequence(epochs, validated):
    seq = [("on_train_begin", None)]
    for e in epochs:
        seq.append(("on_epoch_begin", e))
        for b in range(3):
            seq += [("on_train_batch_begin", b), ("on_train_batch_end", b)]
        if e in validated:
            seq.append(("on_val_begin", None))
            for b in range(2):
                seq += [("on_val_batch_begin", b), ("on_val_batch_end", b)]
            seq.append(("on_val_end", None))
        seq.append(("on_epoch_end", e))
    seq.append(("on_train_end", None))
    return seq


def weighted_mean(rows, key):
    return sum(r[key] * r["size"] for r in rows) / sum(r["size"] for r in rows)


def check_run(rec, handler, epochs, validated, start, total):
    assert [(h, v) for h, v, _ in rec.calls] == expected_sequence(epochs, validated)
    by_epoch = {}
    current = None
    for hook, value, logs in rec.calls:
        if hook == "on_epoch_begin":
            current = value
            by_epoch[current] = {"train": [], "val": []}
            assert logs == {"epoch": value + 1}
        elif hook == "on_train_batch_begin":
            assert logs == {"batch": value, "size": TRAIN_SIZES[value]}
        elif hook == "on_val_batch_begin":
            assert logs == {"batch": value, "size": VAL_SIZES[value]}
        elif hook == "on_train_batch_end":
            assert list(logs) == ["batch", "size", "loss", "acc"]
            assert logs["batch"] == value and logs["size"] == TRAIN_SIZES[value]
            by_epoch[current]["train"].append(logs)
        elif hook == "on_val_batch_end":
            assert list(logs) == ["batch", "size", "val_loss", "val_acc"]
            assert logs["batch"] == value and logs["size"] == VAL_SIZES[value]
            by_epoch[current]["val"].append(logs)
        elif hook == "on_val_begin":
            assert logs == {"epoch": current + 1}
        elif hook == "on_val_end":
            assert list(logs) == ["epoch", "val_loss", "val_acc"]
            assert logs["epoch"] == current + 1
            assert logs["val_loss"] == pytest.approx(
                weighted_mean(by_epoch[current]["val"], "val_loss")
            )
            by_epoch[current]["val_end"] = logs
        elif hook == "on_epoch_end":
            keys = ["epoch", "loss", "acc", "val_loss", "val_acc", "epoch_time", "lr", "lr_group_0"]
            assert list(logs) == keys
            assert logs["epoch"] == value + 1
            i = value  # one train() history entry per global epoch
            assert logs["loss"] == handler.train_losses[i]
            assert logs["acc"] == handler.train_metrics_history["acc"][i]
            assert logs["loss"] == pytest.approx(weighted_mean(by_epoch[value]["train"], "loss"))
            assert logs["lr"] == logs["lr_group_0"] == pytest.approx(0.1)
            assert logs["epoch_time"] > 0
            if value in validated:
                assert logs["val_loss"] == by_epoch[value]["val_end"]["val_loss"]
                assert logs["val_acc"] == by_epoch[value]["val_end"]["val_acc"]
                assert logs["val_loss"] in handler.val_losses
            else:
                assert math.isnan(logs["val_loss"]) and math.isnan(logs["val_acc"])
            by_epoch[value]["end"] = logs
    begin = rec.calls[0][2]
    assert begin == {"start_epoch": start, "total_epochs": total, "world_size": 1}
    end = rec.calls[-1][2]
    last = by_epoch[epochs[-1]]["end"]
    assert end == {**last, "final_epoch": epochs[-1] + 1, "world_size": 1}


def test_hook_order_and_logs_validation_every_epoch(small_data):
    handler = make_handler(small_data)
    rec = Recorder()
    handler.add_callback(rec)
    assert rec.handler is handler
    handler.train(2, progress_bar=False)
    check_run(rec, handler, [0, 1], {0, 1}, start=0, total=2)
    assert len(handler.val_losses) == 2

    # A second train() continues the epoch numbers and the begin logs say so.
    rec.calls.clear()
    handler.train(1, progress_bar=False)
    check_run(rec, handler, [2], {2}, start=2, total=3)


def test_hook_order_and_logs_validation_every_second_epoch(small_data):
    handler = make_handler(small_data)
    rec = Recorder()
    handler.add_callback(rec)
    handler.train(2, validate_every=2, progress_bar=False)
    check_run(rec, handler, [0, 1], {1}, start=0, total=2)
    assert len(handler.val_losses) == 1


def test_only_overridden_hooks_are_called_and_auto_save_runs_after_epoch_end(small_data):
    events = []

    class EpochOnly(Callback):
        def on_epoch_end(self, epoch, logs=None):
            events.append(("native", epoch))

    class Spy(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            events.append(("lightning", trainer.current_epoch))

    handler = make_handler(small_data, metric=False, val=False)
    handler.add_callback(EpochOnly())
    handler.add_callback(Spy())
    handler.train(2, progress_bar=False)
    bridge = NativeCallbackBridge(handler.callbacks[:1], handler.logger, handler.run_state)
    assert [h for h in HOOKS if bridge._by_hook[h]] == ["on_epoch_end"]
    # Native callbacks run before Lightning callbacks given to add_callback (and the AutoSaver).
    assert events == [("native", 0), ("lightning", 0), ("native", 1), ("lightning", 1)]


def test_raising_callback_is_reported_once_per_hook_and_training_goes_on(small_data):
    class Boom(Callback):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def on_epoch_end(self, epoch, logs=None):
            self.calls += 1
            raise ValueError("kaput")

    rec = Recorder()
    handler = make_handler(small_data, metric=False)
    boom = Boom()
    handler.add_callback(boom)
    handler.add_callback(rec)
    with pytest.warns(RuntimeWarning, match=r"Boom\.on_epoch_end raised ValueError: kaput") as got:
        handler.train(3, progress_bar=False)
    assert sum("Boom.on_epoch_end" in str(w.message) for w in got) == 1
    assert boom.calls == 3
    assert len(handler.train_losses) == 3
    assert [v for h, v, _ in rec.calls if h == "on_epoch_end"] == [0, 1, 2]


def test_stop_training_flag_stops_after_the_current_epoch(small_data):
    class StopAt(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs["epoch"] == 2:
                self.handler._stop_training = True

    rec = Recorder()
    handler = make_handler(small_data, metric=False)
    handler.add_callback(StopAt())
    handler.add_callback(rec)
    handler.train(5, progress_bar=False)
    assert len(handler.train_losses) == 2
    assert rec.calls[-1][0] == "on_train_end" and rec.calls[-1][2]["final_epoch"] == 2
    # The flag is reset by the next train() call, which then runs all its epochs.
    handler.clear_callbacks()
    handler.train(2, progress_bar=False)
    assert len(handler.train_losses) == 4


def test_lightning_callbacks_given_to_add_callback_run_in_train(small_data):
    from lightning.pytorch.callbacks import LearningRateMonitor

    class Spy(L.Callback):
        def __init__(self):
            self.epochs = []
            self.val_losses = []

        def on_train_epoch_end(self, trainer, pl_module):
            self.epochs.append(trainer.current_epoch)
            self.val_losses.append(float(trainer.callback_metrics["val_loss"]))

    handler = make_handler(small_data, metric=False)
    spy, lr_monitor = Spy(), LearningRateMonitor(logging_interval="epoch")
    handler.add_callback(spy)
    handler.add_callback(lr_monitor)
    handler.train(2, progress_bar=False)
    assert spy.epochs == [0, 1]
    assert spy.val_losses == pytest.approx(handler.val_losses)
    # Lightning's LearningRateMonitor needs a logger: the Trainer got Lightning's default one.
    assert [v for values in lr_monitor.lrs.values() for v in values] == pytest.approx([0.1, 0.1])


def test_native_callbacks_in_a_plain_lightning_trainer(small_data):
    from nn_handler.adapters.fit.inputs import build_module

    handler = make_handler(small_data)
    rec = Recorder()
    rec.set_handler(handler)
    module = build_module(handler.setup, handler.run_state, handler.runtime)
    trainer = L.Trainer(
        max_epochs=2,
        callbacks=[EpochLogs(), NativeCallbackBridge([rec], handler)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(
        module,
        train_dataloaders=handler.train_loader,
        val_dataloaders=handler.val_loader,
    )
    check_run(rec, handler, [0, 1], {0, 1}, start=0, total=2)


def test_bridge_state_round_trip_restores_by_class_name():
    from nn_handler.callbacks import EarlyStopping, EpochTimer

    a, b = EpochTimer(), EpochTimer()
    a.times, b.times = [1.0], [2.0, 3.0]
    stop = EarlyStopping(patience=3)
    stop.wait = 2
    state = NativeCallbackBridge([a, stop, b], None).state_dict()
    assert state["callback_classes"] == ["EpochTimer", "EarlyStopping", "EpochTimer"]

    fresh = [EpochTimer(), EpochTimer(), EarlyStopping(patience=3)]
    NativeCallbackBridge(fresh, None).load_state_dict(state)
    assert fresh[0].times == [1.0] and fresh[1].times == [2.0, 3.0] and fresh[2].wait == 2

    with pytest.warns(RuntimeWarning, match="'EarlyStopping' has no matching callback"):
        restore_callback_states([EpochTimer()], ["EarlyStopping"], [{"wait": 1}])


@pytest.mark.parametrize("steps_per_execution", [1, 16])
def test_lightnings_sanity_check_reaches_no_native_hook(small_data, steps_per_execution):
    """``num_sanity_val_steps`` in trainer_kwargs: Lightning validates before training; the
    native callbacks see exactly the hooks and logs of a run without it."""
    handler = make_handler(small_data)
    rec = Recorder()
    handler.add_callback(rec)
    handler.train(
        2,
        progress_bar=False,
        steps_per_execution=steps_per_execution,
        trainer_kwargs={"num_sanity_val_steps": 2},
    )
    check_run(rec, handler, [0, 1], {0, 1}, start=0, total=2)
    assert len(handler.val_losses) == 2
