"""The pieces that carry train() across Lightning's launchers, in one process (no workers).

The real multi-process runs are in test_launchers.py.
"""

from __future__ import annotations

import io
import logging
import pickle
import sys
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.launcher import _Launcher
from lightning.pytorch.utilities.model_helpers import is_overridden
from models import TinyNet, accuracy
from nn_handler.adapters.fit.callbacks import lightning_callbacks
from nn_handler.adapters.fit.launchers import (
    WorkerData,
    WorkerResultsLauncher,
    fit_arguments,
    stateless_callbacks,
    worker_data,
)
from nn_handler.adapters.fit.strategy import strategy_arguments
from nn_handler.adapters.hooks import progress_bar
from nn_handler.adapters.hooks.process_place import ProcessPlace

from nn_handler import NNHandler
from nn_handler._env.dist_env import DistEnv
from nn_handler._state.logger_spec import LoggerSpec
from nn_handler._state.run_state import RunState
from nn_handler.callbacks import Callback, ProgressMonitor


class Counts(Callback):
    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1

    def state_dict(self):
        return {"epochs": self.epochs}

    def load_state_dict(self, state):
        self.epochs = state["epochs"]


class Forgets(Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.seen = epoch


class Batches(L.Callback):
    def __init__(self):
        self.n = 0

    def on_train_batch_end(self, *args, **kwargs):
        self.n += 1

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state_dict):
        self.n = state_dict["n"]


class ForgetsToo(L.Callback):
    def on_train_batch_end(self, *args, **kwargs):
        self.seen = True


def make(cls_data, tmp_path, *callbacks) -> NNHandler:
    torch.manual_seed(0)
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.Adam, lr=1e-2)
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.add_metric("acc", accuracy)
    handler.set_train_loader(cls_data, batch_size=64)
    handler.set_val_loader(cls_data, batch_size=96)
    handler.auto_save(1, save_path=str(tmp_path / "saves"), name="m{epoch}", overwrite=True)
    for callback in callbacks:
        handler.add_callback(callback)
    return handler


# ------------------------------------------------------------------ run state
def test_run_state_travels_whole_through_bytes():
    module = torch.nn.Linear(3, 2)
    sent = RunState()
    sent.ensure_ema(module, 0.5, "cpu")
    with torch.no_grad():
        module.weight.add_(1.0)
    sent.ema.update_parameters(module)
    sent.record_epoch({"loss": 0.5, "val_loss": 0.7, "acc": 0.9, "val_acc": 0.8}, ["acc"])
    sent.record_global_step(7)
    sent.request_stop()
    sent.saver.record("/tmp/x/a.pth")
    buffer = io.BytesIO()
    torch.save(sent.worker_state(), buffer)

    got = RunState()
    got.ensure_ema(torch.nn.Linear(3, 2), 0.5, "cpu")
    got.load_worker_state(torch.load(io.BytesIO(buffer.getvalue()), weights_only=False))
    assert got.history == sent.history and got.global_step == 7 and got.stop_requested
    for key, value in sent.ema.state_dict().items():
        assert torch.equal(got.ema.state_dict()[key], value)
    assert (got.saver.last_saved, got.saver.written) == ("/tmp/x/a.pth", {"/tmp/x/a.pth"})


def test_run_state_refuses_an_ema_it_cannot_hold():
    sent = RunState()
    sent.ensure_ema(torch.nn.Linear(3, 2), 0.5, "cpu")
    with pytest.raises(RuntimeError, match="sent back ema_state_dict but this process has no ema"):
        RunState().load_worker_state(sent.worker_state())


def test_run_state_with_an_ema_pickles(cls_data, tmp_path):
    handler = make(cls_data, tmp_path)
    handler.train(1, progress_bar=False, ema_decay=0.9)
    copy = pickle.loads(pickle.dumps(handler.run_state))
    before = copy.ema.module.body[0].weight.clone()
    copy.ema.update_parameters(TinyNet())
    assert not torch.equal(copy.ema.module.body[0].weight, before)
    # The callbacks a spawned worker gets, the AutoSaver's checkpoint builder among them.
    parts = (handler.setup, handler.run_state, handler.runtime)
    assert len(pickle.loads(pickle.dumps(lightning_callbacks(*parts, True)))) == 2


# ------------------------------------------------------------------- channel
def test_worker_results_land_in_the_main_processs_objects(cls_data, tmp_path):
    """What rank 0 sends is what the main process then holds (the channel, without workers)."""
    worker = make(cls_data, tmp_path, Counts(), Batches())
    worker.train(2, progress_bar=False, ema_decay=0.9)
    main = make(cls_data, tmp_path, Counts(), Batches())
    main.run_state.ensure_ema(main.module, 0.9, main.device)  # train() does so before a launch

    sender = WorkerResultsLauncher(None, "fork", worker.callbacks, worker.run_state, worker.runtime)
    finished = SimpleNamespace(
        callback_metrics={"loss": torch.tensor(0.25)}, global_step=worker.run_state.global_step
    )
    extra = sender.get_extra_results(finished)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False)
    receiver = WorkerResultsLauncher(None, "fork", main.callbacks, main.run_state, main.runtime)
    receiver.update_main_process_results(trainer, extra)

    assert main.train_losses == worker.train_losses and len(main.train_losses) == 2
    assert main.val_metrics_history == worker.val_metrics_history
    assert main.run_state.global_step == worker.run_state.global_step == 6
    assert (trainer.global_step, trainer.current_epoch) == (6, 2)  # read by train() after fit
    assert float(trainer.callback_metrics["loss"]) == 0.25
    for key, value in worker.ema.state_dict().items():
        assert torch.equal(main.ema.state_dict()[key], value)
    want, got = worker.optimizer.state_dict(), main.optimizer.state_dict()
    assert got["param_groups"] == want["param_groups"]
    for index, slot in want["state"].items():
        for key, value in slot.items():
            assert torch.equal(got["state"][index][key], value)
    assert main.scheduler.state_dict() == worker.scheduler.state_dict()
    assert [c.state_dict() for c in main.callbacks] == [{"epochs": 2}, {"n": 6}]
    assert main.run_state.saver.written == worker.run_state.saver.written != set()


# -------------------------------------------------------------- before a fit
def test_spawn_gets_the_results_launcher_and_a_warning_per_stateless_callback(cls_data, tmp_path):
    handler = make(cls_data, tmp_path, Counts(), Forgets(), Batches(), ForgetsToo())
    handler.add_callback(ProgressMonitor())  # a built-in without state: no warning
    trainer = L.Trainer(strategy="ddp_spawn", devices=2, accelerator="cpu", logger=False)
    parts = (handler.setup, handler.run_state, handler.runtime)
    with pytest.warns(UserWarning) as caught:
        data = fit_arguments(trainer, *parts, lambda: (handler.train_loader, handler.val_loader))
    ours = [str(w.message) for w in caught if "has no state_dict()" in str(w.message)]
    assert [m.split()[1] for m in ours] == ["Forgets", "ForgetsToo"]
    assert "does not come back" in ours[0] and "torchrun" in ours[0]
    launcher = trainer.strategy.launcher
    assert isinstance(launcher, WorkerResultsLauncher) and launcher._start_method == "spawn"
    assert isinstance(trainer.callbacks[0], ProcessPlace)
    assert set(data) == {"datamodule"} and is_overridden("val_dataloader", data["datamodule"])
    assert handler.train_losses == []


def test_stateless_callbacks_are_the_users_without_state_dict():
    from lightning.pytorch.callbacks import LearningRateMonitor

    ours = [Counts(), Forgets(), Batches(), ForgetsToo(), ProgressMonitor(), LearningRateMonitor()]
    assert [type(c).__name__ for c in stateless_callbacks(ours)] == ["Forgets", "ForgetsToo"]


class _OddLauncher(_Launcher):
    launched = False

    @property
    def is_interactive_compatible(self) -> bool:
        return True

    def launch(self, function, *args, trainer=None, **kwargs):
        _OddLauncher.launched = True
        raise AssertionError("the refusal must come before any launch")

    def kill(self, signum) -> None:
        pass


class _OddStrategy(DDPStrategy):
    def _configure_launcher(self) -> None:
        self._launcher = _OddLauncher()


def test_a_launcher_whose_results_cannot_come_back_is_refused_before_training(cls_data, tmp_path):
    handler = make(cls_data, tmp_path)
    before = {k: v.clone() for k, v in handler.module.state_dict().items()}
    kwargs = {"strategy": _OddStrategy(), "devices": 2, "accelerator": "cpu"}
    with pytest.raises(RuntimeError, match=r"_OddLauncher\) starts processes whose history"):
        handler.train(1, progress_bar=False, trainer_kwargs=kwargs)
    assert not _OddLauncher.launched
    assert handler.train_losses == [] and handler.run_state.global_step == 0
    for key, value in handler.module.state_dict().items():
        assert torch.equal(value, before[key])


def test_worker_data_validates_only_with_a_validation_loader():
    loaders = ([1, 2], [3])
    with_val, without = worker_data(lambda: loaders, True), worker_data(lambda: loaders, False)
    assert isinstance(with_val, WorkerData) and isinstance(without, WorkerData)
    assert is_overridden("val_dataloader", with_val, L.LightningDataModule)
    assert not is_overridden("val_dataloader", without, L.LightningDataModule)
    assert (with_val.train_dataloader(), with_val.val_dataloader()) == loaders


def test_a_process_lightning_started_plans_its_next_trainer_itself():
    placed = DistEnv(True, 1, 1, 2, "lightning", 2, 1, 0)
    assert strategy_arguments(placed, torch.device("cpu"), {}) == {}


# ------------------------------------------------------------ in the workers
def _trainer_at(rank: int) -> SimpleNamespace:
    return SimpleNamespace(
        global_rank=rank,
        local_rank=rank,
        world_size=2,
        num_devices=2,
        num_nodes=1,
        node_rank=0,
        strategy=SimpleNamespace(root_device=torch.device("cpu")),
    )


@pytest.mark.parametrize("rank", [0, 1])
def test_process_place_gives_the_facade_its_rank_and_quiets_other_ranks(rank, tmp_path):
    handler = NNHandler(TinyNet, logger_mode="file", logger_filename=str(tmp_path / "h.log"))
    assert (handler._rank, handler._world_size, handler._distributed) == (0, 1, False)
    ProcessPlace(handler.run_state, handler.runtime).setup(_trainer_at(rank), None, "fit")
    assert (handler._rank, handler._world_size, handler._distributed) == (rank, 2, True)
    assert handler._local_rank == rank and handler.runtime.dist.source == "lightning"
    assert (handler.logger is None) == (rank != 0)  # as under torchrun
    handler.runtime.logger.info("from rank %d", rank)  # what the module and callbacks log with
    logged = (tmp_path / "h.log").read_text()
    assert ("from rank" in logged) == (rank == 0)


def test_logger_spec_rebuilds_a_spawned_workers_logger_without_truncating(tmp_path):
    name = "nn_handler.test.spec"
    logger = logging.getLogger(name)
    logger.propagate, logger.level = False, logging.INFO
    file = logging.FileHandler(tmp_path / "run.log", mode="w")
    file.setFormatter(logging.Formatter("%(levelname)s|%(message)s"))
    logger.addHandler(file)
    logger.addHandler(logging.StreamHandler(sys.stdout))
    logger.info("main process")
    spec = pickle.loads(pickle.dumps(LoggerSpec.of(logger)))
    for handler in list(logger.handlers):  # a spawned process: the name, no handlers
        logger.removeHandler(handler)
        handler.close()

    rebuilt = spec.apply(rank=0)
    assert rebuilt is logger
    kinds = [type(h).__name__ for h in logger.handlers]
    assert kinds == ["FileHandler", "StreamHandler"]
    assert logger.handlers[1].stream is sys.stdout
    logger.info("worker")
    logger.handlers[0].flush()
    assert (tmp_path / "run.log").read_text() == "INFO|main process\nINFO|worker\n"
    spec.apply(rank=1)
    assert logger.disabled
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def test_progress_bar_is_text_in_a_worker_process(monkeypatch):
    bar = progress_bar.EpochProgressBar()
    assert progress_bar._bar_class() is progress_bar.Tqdm
    monkeypatch.setattr(progress_bar.multiprocessing, "parent_process", lambda: object())
    made = bar._bar(desc="Epochs", total=2, file=io.StringIO())
    assert type(made).__mro__[1].__module__ == "tqdm.std"
    assert made.format_num(0.5) == progress_bar.Tqdm.format_num(0.5)
    made.close()


def test_the_step_count_comes_back_from_the_workers_trainer(cls_data, tmp_path):
    """In a worker, ``train()`` records the step count only after the fit, that is after the
    results were sent: the count must come from the worker's finished Trainer."""
    worker = make(cls_data, tmp_path)
    main = make(cls_data, tmp_path)
    assert worker.run_state.global_step == 0  # what a worker's run state holds during the fit
    sender = WorkerResultsLauncher(None, "fork", worker.callbacks, worker.run_state, worker.runtime)
    finished = SimpleNamespace(callback_metrics={}, global_step=6)
    extra = sender.get_extra_results(finished)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False)
    receiver = WorkerResultsLauncher(None, "fork", main.callbacks, main.run_state, main.runtime)
    receiver.update_main_process_results(trainer, extra)
    assert main.run_state.global_step == trainer.global_step == 6
