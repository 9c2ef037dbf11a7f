"""Exact resume (save, AutoSaver file, Lightning ckpt_path) and the original NNHandler's files."""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import pytest
import torch
from models import DropoutNet, TinyNet, accuracy
from nn_handler.adapters.fit.callbacks import lightning_callbacks
from nn_handler.adapters.fit.inputs import build_module
from torch import nn

from nn_handler import Callback, NNHandler

pytestmark = pytest.mark.filterwarnings(
    "ignore:The `srun` command is available", "ignore:.*isinstance\\(treespec, LeafSpec\\)"
)


def _make(data):
    torch.manual_seed(7)
    h = NNHandler(DropoutNet)
    h.set_optimizer(torch.optim.Adam, lr=1e-2)
    h.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    h.set_loss_fn(nn.functional.cross_entropy)
    h.add_metric("accuracy", accuracy)
    _data(h, data)
    return h


def _data(h, data):
    h.set_train_loader(data, batch_size=32, shuffle=True)
    h.set_val_loader(data, batch_size=96)


def _same_weights(a, b):
    return all(
        torch.equal(x, y)
        for x, y in zip(a.module.state_dict().values(), b.module.state_dict().values(), strict=True)
    )


def _same_history(a, b):
    return (a.train_losses, a.val_losses, a.train_metrics_history, a.val_metrics_history) == (
        b.train_losses,
        b.val_losses,
        b.train_metrics_history,
        b.val_metrics_history,
    )


@pytest.fixture
def one_go(cls_data):
    h = _make(cls_data)
    h.train(4, seed=0, progress_bar=False)
    return h


def test_train_save_load_train_equals_one_run(cls_data, one_go):
    first = _make(cls_data)
    first.auto_save(2, save_path="auto", name="a{epoch:02d}")
    first.train(2, seed=0, progress_bar=False)
    first.save("half.pth")
    for path in ("half.pth", "auto/a02.pth"):
        torch.manual_seed(12345)  # load restores the generators: what ran in between is irrelevant
        resumed = NNHandler.load(path)
        _data(resumed, cls_data)
        resumed.auto_save(None)
        resumed.train(2, progress_bar=False)
        assert _same_weights(resumed, one_go), path
        assert _same_history(resumed, one_go), path
        assert resumed.run_state.global_step == one_go.run_state.global_step == 24


def test_load_restores_generators_unless_told_not_to(cls_data):
    h = _make(cls_data)
    h.train(1, seed=0, progress_bar=False)
    h.save("h.pth")
    after_save = torch.rand(3)
    torch.manual_seed(99)
    NNHandler.load("h.pth")
    assert torch.equal(torch.rand(3), after_save)
    torch.manual_seed(99)
    NNHandler.load("h.pth", restore_rng=False)
    assert not torch.equal(torch.rand(3), after_save)


def test_load_restores_python_and_numpy_generators(cls_data):
    h = _make(cls_data)
    h.train(1, seed=0, progress_bar=False)
    h.save("h.pth")
    after_save = (random.random(), np.random.rand(3).tolist(), np.random.normal())
    random.seed(99)
    np.random.seed(99)
    NNHandler.load("h.pth")
    assert (random.random(), np.random.rand(3).tolist(), np.random.normal()) == after_save


def test_a_loaders_own_generator_continues_after_load(cls_data):
    def make():
        h = _make(cls_data)
        gen = torch.Generator().manual_seed(5)
        h.set_train_loader(cls_data, batch_size=32, shuffle=True, generator=gen)
        return h

    one = make()
    one.train(4, seed=0, progress_bar=False)
    first = make()
    first.train(2, seed=0, progress_bar=False)
    first.save("half.pth")
    resumed = NNHandler.load("half.pth")
    # The script is run again: its loader gets a generator seeded as before, which the load
    # moves on to where the saved run's generator was.
    resumed.set_train_loader(
        cls_data, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(5)
    )
    resumed.set_val_loader(cls_data, batch_size=96)
    resumed.train(2, progress_bar=False)
    assert _same_weights(resumed, one) and _same_history(resumed, one)


def _lr_per_epoch(h):
    class LrLog(Callback):
        def __init__(self):
            super().__init__()
            self.lrs = []

        def on_epoch_end(self, epoch, logs=None):
            self.lrs.append(logs["lr"])

    log = LrLog()
    h.add_callback(log)
    return log


@pytest.mark.filterwarnings("ignore:A `OneCycleLR` scheduler is using 'interval'")
@pytest.mark.parametrize(
    "scheduler, kwargs",
    [
        # Stepped once per epoch: the lr of epoch 3 depends on how many steps came before.
        (torch.optim.lr_scheduler.OneCycleLR, {"max_lr": 0.05, "total_steps": 5}),
        # Only a 50 % improvement counts: epochs 2 and 3 are bad, so the lr halves for epoch 4
        # only if the best value and the count of bad epochs survive the load.
        (
            torch.optim.lr_scheduler.ReduceLROnPlateau,
            {"patience": 1, "factor": 0.5, "threshold": 0.5},
        ),
    ],
)
def test_resume_with_a_stateful_scheduler_equals_one_run(cls_data, scheduler, kwargs):
    def make():
        torch.manual_seed(7)
        h = NNHandler(TinyNet)
        h.set_optimizer(torch.optim.SGD, lr=0.05)
        h.set_scheduler(scheduler, **kwargs)
        h.set_loss_fn(nn.functional.cross_entropy)
        _data(h, cls_data)
        return h

    one = make()
    one_lrs = _lr_per_epoch(one)
    one.train(4, seed=0, progress_bar=False)
    first = make()
    first.train(2, seed=0, progress_bar=False)
    first.save("half.pth")
    resumed = NNHandler.load("half.pth", skip_callbacks=True)
    _data(resumed, cls_data)
    resumed_lrs = _lr_per_epoch(resumed)
    resumed.train(2, progress_bar=False)
    assert resumed_lrs.lrs == one_lrs.lrs[2:] and len(set(one_lrs.lrs)) > 1
    assert _same_weights(resumed, one) and _same_history(resumed, one)
    assert resumed.scheduler.state_dict() == one.scheduler.state_dict()


def test_lightning_trainer_resumes_from_handler_file(cls_data, one_go):
    first = _make(cls_data)
    first.train(2, seed=0, progress_bar=False)
    first.save("half.pth")
    fresh = _make(cls_data)
    seen = {}

    class Probe(L.Callback):
        def on_train_start(self, trainer, pl_module):
            seen["epoch"], seen["step"] = trainer.current_epoch, trainer.global_step
            seen["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
            seen["w"] = pl_module.model.body[0].weight.detach().clone()

    trainer = L.Trainer(
        max_epochs=4,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        callbacks=[
            *lightning_callbacks(fresh.setup, fresh.run_state, fresh.runtime, True),
            Probe(),
        ],
    )
    trainer.fit(
        build_module(fresh.setup, fresh.run_state, fresh.runtime),
        fresh.train_loader,
        fresh.val_loader,
        ckpt_path="half.pth",
    )
    assert (seen["epoch"], seen["step"], seen["lr"]) == (
        2,
        12,
        first.optimizer.param_groups[0]["lr"],
    )
    assert torch.equal(seen["w"], first.module.body[0].weight)
    assert trainer.current_epoch == 4 and trainer.global_step == 24
    assert len(fresh.train_losses) == 2  # epochs 3 and 4 ran


def test_lightning_checkpoint_with_handler_keys_loads_and_extras_restore(cls_data, one_go):
    from nn_handler.adapters.steps.module import HandlerModule

    from nn_handler.checkpoint import handler_checkpoint, restore_handler_extras

    first = _make(cls_data)

    class Exported(HandlerModule):
        # What the exported module does: Lightning's own .ckpt files carry the handler keys.
        def on_save_checkpoint(self, checkpoint):
            checkpoint.update(
                handler_checkpoint(first.setup, first.run_state, first.runtime, self.trainer)
            )

    module = Exported(**_module_args(first))
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=lightning_callbacks(first.setup, first.run_state, first.runtime, True),
    )
    torch.manual_seed(0)
    trainer.fit(module, first.train_loader, first.val_loader)
    trainer.save_checkpoint("lightning.ckpt")
    loaded = NNHandler.load("lightning.ckpt")
    assert _same_weights(loaded, first) and loaded.train_losses == first.train_losses
    assert loaded.run_state.global_step == trainer.global_step == 12

    fresh = _make(cls_data)
    ckpt = torch.load("lightning.ckpt", weights_only=True)
    restore_handler_extras(fresh.setup, fresh.run_state, ckpt)
    assert _same_history(fresh, first) and fresh.run_state.global_step == 12


def _module_args(h):
    return {
        "model": h.model,
        "model_type": h.model_type,
        "loss": h.setup.loss,
        "metrics": h.metrics,
        "optimizer": h.optimizer,
        "scheduler": h.scheduler,
        "run_state": h.run_state,
    }


# ------------------------------------------------------------------ legacy
def test_legacy_pickle_needs_the_opt_in(legacy_file):
    path, _ = legacy_file
    with pytest.raises(
        ValueError, match=r"references legacy_models.TinyClassifier.*allow_legacy_pickle"
    ):
        NNHandler.load(path)


def test_legacy_checkpoint_matches_expected_and_trains_on(legacy_file, cls_data):
    path, expected = legacy_file
    h = NNHandler.load(path, allow_legacy_pickle=True)
    assert type(h.module).__module__ + "." + type(h.module).__name__ == expected["model_class"]
    assert h.model_kwargs == expected["model_kwargs"]
    assert h.model_type.value == expected["model_type"]
    assert h.train_losses == expected["train_losses"] and h.val_losses == expected["val_losses"]
    assert h.train_metrics_history == expected["train_metrics_history"]
    assert h.val_metrics_history == expected["val_metrics_history"]
    assert h.optimizer.param_groups[0]["lr"] == pytest.approx(expected["lr_after_training"])
    assert type(h.optimizer).__name__ == "Adam" and type(h.scheduler).__name__ == "StepLR"
    assert isinstance(h.loss_fn, nn.CrossEntropyLoss)
    probe = torch.linspace(-1, 1, 40).reshape(5, 8)
    h.eval(log=False)
    with torch.no_grad():
        out = h.module(probe)
    torch.testing.assert_close(out, torch.tensor(expected["probe_outputs"]), atol=1e-6, rtol=0)

    h.set_train_loader(cls_data, batch_size=64, shuffle=True)
    h.train(1, progress_bar=False)
    assert h.train_losses[:3] == expected["train_losses"] and len(h.train_losses) == 4
    assert h.optimizer.param_groups[0]["lr"] == pytest.approx(expected["lr_after_training"] / 2)
    h.save("converted.pth")  # re-saved in the safe format
    again = torch.load("converted.pth", weights_only=True)
    assert again["model_class"] == "legacy_models:TinyClassifier"
    assert again["loss_fn"]["path"] == "torch.nn.modules.loss:CrossEntropyLoss"


def test_loop_state_matches_a_real_trainer():
    # Guards the Trainer-free loop state of `save` against changes in Lightning's loops.
    from nn_handler.adapters.fit.inputs import quiet_lightning
    from nn_handler.adapters.fit.trainer_factory import continue_from

    from nn_handler.checkpoint._state import _loop_template

    with quiet_lightning():
        trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False)
    continue_from(trainer, 3, 7)
    assert trainer._checkpoint_connector._get_loops_state_dict() == _loop_template(3, 7)


def test_load_restores_numpys_cached_normal_draw(cls_data):
    """NumPy's legacy ``normal()`` draws a pair and keeps the second for the next call
    (Box–Muller): after a load, the next draws are those the uninterrupted script got."""
    h = _make(cls_data)
    np.random.seed(7)
    np.random.normal()  # leaves the pair's second value cached
    assert np.random.get_state()[3] == 1  # has_gauss
    h.save("h.pth")
    uninterrupted = [np.random.normal() for _ in range(3)]
    np.random.seed(99)
    NNHandler.load("h.pth")
    assert [np.random.normal() for _ in range(3)] == uninterrupted
