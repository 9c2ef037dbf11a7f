"""The Lightning callbacks of a fit and their order, decided in one place
(``adapters/fit/callbacks.py``) for ``train()`` and for the exported module."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from models import TinyNet
from nn_handler.adapters.fit.callbacks import (
    epoch_logs_first,
    lightning_callbacks,
    model_callbacks,
    train_callbacks,
)
from nn_handler.adapters.fit.trainer_factory import TrainPlan

from nn_handler import NNHandler
from nn_handler._env.dist_env import DistEnv
from nn_handler.callbacks import Callback


class Native(Callback):
    def on_epoch_end(self, epoch, logs=None):
        pass


class UserLightning(L.Callback):
    pass


def _handler(tmp_path, *callbacks, log_file=None):
    kwargs = {}
    if log_file is not None:  # logger_mode FILE at INFO: the epoch log line is added
        kwargs = dict(logger_mode="file", logger_filename=str(log_file), logger_level=logging.INFO)
    handler = NNHandler(TinyNet, device="cpu", **kwargs)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    for callback in callbacks:
        handler.add_callback(callback)
    return handler


def _plan(bars: bool) -> TrainPlan:
    return TrainPlan(epochs=1, start_epoch=0, validate_every=1, progress_bar=bars)


def _names(callbacks):
    return [type(c).__name__ for c in callbacks]


def test_train_callbacks_in_their_order_with_every_condition_on(tmp_path):
    native, user = Native(), UserLightning()
    handler = _handler(tmp_path, user, native, log_file=tmp_path / "run.log")
    handler.auto_save(1, save_path=str(tmp_path))
    handler.runtime.dist = DistEnv(True, 0, 0, 2, "torchrun", 2, 1, 0)  # two processes
    parts = (handler.setup, handler.run_state, handler.runtime)
    got = train_callbacks(*parts, _plan(bars=True), True)
    assert _names(got) == [
        "EpochLogs",
        "EpochLogLine",
        "NativeCallbackBridge",
        "UserLightning",
        "LeaveAloneOnSigterm",
        "AutoSaver",
        "EpochProgressBar",
    ]
    assert got[3] is user and got[2].callbacks == [native]


def test_only_the_epoch_logs_when_nothing_else_is_asked_for(tmp_path):
    handler = _handler(tmp_path)
    parts = (handler.setup, handler.run_state, handler.runtime)
    assert _names(train_callbacks(*parts, _plan(bars=False), True)) == ["EpochLogs"]


def test_a_users_progress_bar_replaces_the_handlers(tmp_path):
    bar = TQDMProgressBar()
    handler = _handler(tmp_path, bar)
    parts = (handler.setup, handler.run_state, handler.runtime)
    got = train_callbacks(*parts, _plan(bars=True), True)
    assert got == [got[0], bar] and _names(got)[0] == "EpochLogs"


def test_the_exported_module_gets_the_same_list_without_what_the_trainer_has(tmp_path):
    user = UserLightning()
    handler = _handler(tmp_path, Native(), user)
    handler.auto_save(1, save_path=str(tmp_path))
    parts = (handler.setup, handler.run_state, handler.runtime)
    fitting = SimpleNamespace(state=SimpleNamespace(fn="fit"), callbacks=[user])
    got = model_callbacks(handler, fitting, set(), True)
    assert _names(got) == ["EpochLogs", "NativeCallbackBridge", "AutoSaver"]
    assert _names(got) == [
        n for n in _names(lightning_callbacks(*parts, True)) if n != "UserLightning"
    ]
    validating = SimpleNamespace(state=SimpleNamespace(fn="validate"), callbacks=[])
    assert "AutoSaver" not in _names(model_callbacks(handler, validating, set(), True))
    ordered = epoch_logs_first([user, *got])
    assert _names(ordered) == ["EpochLogs", "NativeCallbackBridge", "UserLightning", "AutoSaver"]
