"""Interrupts raised inside ``train()`` (in this process): what reaches the caller, and the state
left behind. Real signals sent from outside: test_reliability_signals.py."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from models import TinyNet
from nn_handler.adapters.fit.interrupts import SIGTERM_EXIT_STATUS
from torch.utils.data import TensorDataset

from nn_handler import NNHandler

STOP_STEP, STEPS_PER_EPOCH = 6, 4


class InterruptAt(Callback):
    """At ``step`` raise ``KeyboardInterrupt`` (as Ctrl-C does) or send this process a signal."""

    def __init__(self, step: int, how: str):
        self.step, self.how = step, how

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step != self.step:
            return
        if self.how == "ctrl-c":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.how == "late-sigterm":  # after the last step: Lightning lets the fit finish
            os.kill(os.getpid(), signal.SIGTERM)


def handler_with(callback) -> NNHandler:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16 * STEPS_PER_EPOCH, 8, generator=g)
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.Adam, lr=1e-2)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.set_train_loader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    handler.add_callback(callback)
    return handler


def counters(path: str) -> tuple[int, int, set[int]]:
    ckpt = torch.load(path, weights_only=True)
    adam = {int(s["step"]) for s in ckpt["optimizer_state_dict"]["state"].values()}
    return ckpt["handler_global_step"], ckpt["global_step"], adam


def test_ctrl_c_raises_keyboard_interrupt_not_system_exit_and_restores_the_handler():
    before = signal.getsignal(signal.SIGINT)
    callback = InterruptAt(STOP_STEP, "ctrl-c")
    handler = handler_with(callback)
    with pytest.raises(KeyboardInterrupt):
        handler.train(5, progress_bar=False)
    assert signal.getsignal(signal.SIGINT) is before  # Lightning set SIG_IGN for its teardown
    assert len(handler.train_losses) == 1
    assert next(handler.module.parameters()).device.type == "cpu"
    handler.remove_callback(callback)
    handler.save("interrupted.pth")
    assert counters("interrupted.pth") == (STOP_STEP, STOP_STEP, {STOP_STEP})


def test_the_step_counter_follows_the_optimizer_after_an_interrupt_and_one_more_epoch():
    callback = InterruptAt(STOP_STEP, "ctrl-c")
    handler = handler_with(callback)
    with pytest.raises(KeyboardInterrupt):
        handler.train(5, progress_bar=False)
    handler.remove_callback(callback)
    handler.train(1, progress_bar=False)
    handler.save("after.pth")
    total = STOP_STEP + STEPS_PER_EPOCH
    assert counters("after.pth") == (total, total, {total})
    assert len(handler.train_losses) == 2  # the interrupted epoch never completed


@pytest.mark.parametrize("how", ["sigterm", "late-sigterm"])
def test_sigterm_during_train_exits_with_status_143(how):
    previous = signal.getsignal(signal.SIGTERM)
    handler = handler_with(InterruptAt(STOP_STEP if how == "sigterm" else -1, how))
    with pytest.raises(SystemExit) as caught:
        handler.train(3, progress_bar=False)
    assert caught.value.code == SIGTERM_EXIT_STATUS == 143
    assert signal.getsignal(signal.SIGTERM) is previous  # Lightning's teardown restored it
    assert len(handler.train_losses) == (1 if how == "sigterm" else 3)


def test_lightnings_per_step_sigterm_broadcast_is_skipped_once_ours_handles_sigterm(monkeypatch):
    """Under DDP Lightning broadcasts its SIGTERM flag before every training step (a collective
    and a host sync); with LeaveAloneOnSigterm's handler installed the flag cannot be set, and
    the step start makes no collective even if it were."""
    import lightning as L
    import torch.distributed as dist
    from lightning.pytorch.utilities.exceptions import SIGTERMException
    from nn_handler.adapters.fit.interrupts import LeaveAloneOnSigterm

    broadcasts = []
    monkeypatch.setattr(dist, "broadcast", lambda *a, **k: broadcasts.append(a))
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    loop = trainer.fit_loop.epoch_loop
    previous = signal.getsignal(signal.SIGTERM)
    try:
        trainer._signal_connector.received_sigterm = True  # as Lightning's handler sets it
        with pytest.raises(SIGTERMException):  # Lightning's own check: broadcast, then raise
            loop._broadcast_sigterm_tensor()
        assert len(broadcasts) == 1
        LeaveAloneOnSigterm(rank=0).on_train_start(trainer, None)
        assert signal.getsignal(signal.SIGTERM) is not previous  # ours handles SIGTERM now
        loop._broadcast_sigterm_tensor()
        assert len(broadcasts) == 1  # no collective, no exception
    finally:
        signal.signal(signal.SIGTERM, previous)
