"""RunState changes only through its own methods (docs/architecture.md): its fields are read-only
properties, and each method changes exactly what it says."""

from __future__ import annotations

import pickle

import pytest
import torch
from models import TinyNet

from nn_handler import NNHandler
from nn_handler._state.run_state import RunState

FIELDS = (
    "history",
    "global_step",
    "stop_requested",
    "ema",
    "ema_decay",
    "grad_scaler",
    "saver",
    "loader_rng",
    "loaded_loader_kwargs",
    "resume_point",
    "datamodule_state",
)


@pytest.mark.parametrize("name", FIELDS)
def test_a_field_cannot_be_assigned_from_outside(name):
    state = RunState()
    before = getattr(state, name)
    with pytest.raises(AttributeError):
        setattr(state, name, None if before is not None else 1)
    assert getattr(state, name) is before


def test_no_new_attribute_can_be_added():
    with pytest.raises(AttributeError):
        RunState().global_steps = 3  # a typo is an error, not a silent new attribute


def test_ema_is_created_kept_replaced_and_dropped_by_methods():
    state, model = RunState(), torch.nn.Linear(3, 2)
    state.ensure_ema(model, 0.0, "cpu")
    assert state.ema is None and state.ema_decay == 0.0
    state.ensure_ema(model, 0.9, "cpu")
    first = state.ema
    assert first is not None and state.ema_decay == 0.9
    state.ensure_ema(model, 0.9, "cpu")
    assert state.ema is first  # the same decay keeps the average
    state.ensure_ema(model, 0.5, "cpu")
    assert state.ema is not first and state.ema_decay == 0.5
    state.drop_ema()
    assert state.ema is None and state.ema_decay == 0.0
    assert state.state_dict()["ema_state_dict"] is None


def test_grad_scaler_only_for_cuda_amp():
    state = RunState()
    assert state.ensure_grad_scaler(torch.device("cpu"), True) is None
    assert state.ensure_grad_scaler(torch.device("cuda"), False) is None
    assert state.grad_scaler is None


def test_steps_stop_flag_and_pending_values_change_through_methods():
    state = RunState()
    state.record_global_step(torch.tensor(7))
    assert state.global_step == 7 and type(state.global_step) is int
    state.request_stop()
    assert state.stop_requested is True
    state.clear_stop()
    assert state.stop_requested is False
    state.set_resume_point({"fit_loop": {}})
    assert state.take_resume_point() == {"fit_loop": {}} and state.take_resume_point() is None
    state.set_datamodule_state({"k": 1})
    assert state.take_datamodule_state() == {"k": 1} and state.datamodule_state is None
    state.set_loaded_loaders({"train": {"batch_size": 4}}, {"train": "rng"})
    assert state.loaded_loader_kwargs == {"train": {"batch_size": 4}}
    assert state.take_loader_rng() == {"train": "rng"} and state.take_loader_rng() == {}


def test_a_run_state_pickles_whole():
    state = RunState()
    state.ensure_ema(torch.nn.Linear(3, 2), 0.9, "cpu")
    state.record_epoch({"loss": 0.5}, [])
    state.record_global_step(4)
    state.request_stop()
    copy = pickle.loads(pickle.dumps(state))
    assert copy.worker_state().keys() == state.worker_state().keys()
    assert (copy.global_step, copy.stop_requested, copy.epochs_done) == (4, True, 1)
    assert copy.ema is not None and copy.ema_decay == 0.9


def test_the_originals_stop_flag_goes_through_the_methods():
    handler = NNHandler(TinyNet, device="cpu")
    handler._stop_training = True
    assert handler.run_state.stop_requested is True and handler._stop_training is True
    handler._stop_training = False
    assert handler.run_state.stop_requested is False
