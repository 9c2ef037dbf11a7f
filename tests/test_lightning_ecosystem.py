"""nn_handler with Lightning's own tools: its ModelCheckpoint files, its learning-rate finder, data
modules, and its seeder."""

from __future__ import annotations

import os

import lightning as L
import numpy as np
import pytest
import torch
from models import TinyNet
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from nn_handler import NNHandler


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 8, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


def make_handler(data, **loader_kwargs):
    torch.manual_seed(0)
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.SGD, lr=0.1, momentum=0.9)
    handler.set_loss_fn(nn.functional.cross_entropy)
    handler.set_train_loader(data, **({"batch_size": 8, "shuffle": True} | loader_kwargs))
    return handler


def weights(handler):
    return {k: v.detach().clone() for k, v in handler.module.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------- seeding
class NumpyNoise(Dataset):
    """Each item is a NumPy draw: forked workers share NumPy's state unless they are seeded."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.tensor([float(np.random.rand())] * 8), 0


def test_seed_also_seeds_dataloader_workers(monkeypatch):
    """``seed`` is Lightning's ``seed_everything(seed, workers=True)``: a loader the Trainer reads
    gets Lightning's worker seeding (each worker's streams from the seed, its id and the rank:
    under DDP the ranks' workers draw differently), the same in every run with that seed."""
    from lightning.fabric.utilities.seed import pl_worker_init_function

    monkeypatch.setenv("PL_SEED_WORKERS", "0")  # restored after the test
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)

    def draws():
        handler = make_handler(
            NumpyNoise(), batch_size=1, shuffle=False, num_workers=2, persistent_workers=True
        )
        handler.train(1, seed=5, progress_bar=False)
        assert handler.train_loader.worker_init_fn.func is pl_worker_init_function
        return [float(x[0, 0]) for x, _ in handler.train_loader]

    first = draws()
    # Items 0 and 2 come from worker 0, items 1 and 3 from worker 1.
    assert first[0] != first[1] and first[2] != first[3]
    assert draws() == first


# ------------------------------------------------------- Lightning ModelCheckpoint
def test_a_lightning_model_checkpoint_file_loads_and_continues_exactly(data):
    """A file of Lightning's own ``ModelCheckpoint`` given to ``add_callback`` holds the
    handler's state: ``NNHandler.load`` reads it, and training on from it ends as one run."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    one_run = make_handler(data)
    one_run.train(4, seed=1, progress_bar=False)

    first = make_handler(data)
    first.add_callback(ModelCheckpoint(dirpath="ckpt", filename="{epoch}", save_top_k=-1))
    first.train(4, seed=1, progress_bar=False)
    assert sorted(os.listdir("ckpt")) == [f"epoch={e}.ckpt" for e in range(4)]

    with pytest.warns(UserWarning, match="not re-created"):  # Lightning callbacks: add again
        resumed = NNHandler.load(os.path.join("ckpt", "epoch=1.ckpt"))
    assert resumed.train_losses == first.train_losses[:2]
    resumed.set_train_loader(data, batch_size=8, shuffle=True)
    resumed.train(2, progress_bar=False)
    assert same(weights(resumed), weights(one_run))
    assert resumed.train_losses == one_run.train_losses


def test_a_lightning_model_checkpoint_by_steps_resumes_inside_the_epoch(data):
    """A ``ModelCheckpoint(every_n_train_steps=5)`` file written inside epoch 2 continues that
    epoch (the handler reads its data through a stateful loader while such a callback is on)."""
    pytest.importorskip("torchdata")
    from lightning.pytorch.callbacks import ModelCheckpoint

    first = make_handler(data)
    first.add_callback(ModelCheckpoint(dirpath="ckpt", every_n_train_steps=5, save_top_k=-1))
    first.train(3, seed=4, progress_bar=False)
    assert sorted(os.listdir("ckpt")) == [
        "epoch=0-step=5.ckpt",
        "epoch=1-step=10.ckpt",
        "epoch=2-step=15.ckpt",
    ]

    with pytest.warns(UserWarning, match="not re-created"):
        resumed = NNHandler.load(os.path.join("ckpt", "epoch=1-step=10.ckpt"))
    resumed.set_train_loader(data, batch_size=8, shuffle=True)
    resumed.add_callback(ModelCheckpoint(dirpath="again", every_n_train_steps=5))
    resumed.train(2, progress_bar=False)
    assert same(weights(resumed), weights(first))
    assert resumed.train_losses == first.train_losses


def test_a_dataloader_given_as_such_is_read_as_it_is_with_step_auto_saves(data):
    """Only loaders the handler builds become stateful: the user's own keeps its batch size."""
    handler = make_handler(data)
    handler.set_train_loader(DataLoader(data, batch_size=8, shuffle=True))
    handler.auto_save(None, save_path="ck", every_n_train_steps=5)
    handler.train(1, progress_bar=False)
    assert handler.run_state.global_step == 6 and os.listdir("ck") == ["model_step00000005.pth"]


def test_step_and_epoch_auto_saves_are_one_overwrite_series(data):
    handler = make_handler(data)  # 6 steps an epoch
    handler.auto_save(1, save_path="ck", overwrite=True, every_n_train_steps=4)
    written = []
    handler.add_callback(_Recorder(written, handler))
    handler.train(2, progress_bar=False)
    # Steps 4, (epoch 1 at step 6), 8, 12 and epoch 2 at step 12: the newest file alone stays.
    assert written == [
        "model_step00000004.pth",
        "model_epoch01.pth",
        "model_step00000008.pth",
        "model_step00000012.pth",
        "model_epoch02.pth",
    ]
    assert os.listdir("ck") == ["model_epoch02.pth"]


class _Recorder(L.Callback):
    """Notes each new auto-save the handler reports, after every batch and epoch."""

    def __init__(self, written, handler):
        self.written, self.handler = written, handler

    def _note(self):
        last = self.handler.last_saved_model
        if last and (not self.written or self.written[-1] != os.path.basename(last)):
            self.written.append(os.path.basename(last))

    def on_train_batch_end(self, *args, **kwargs):
        self._note()

    def on_train_epoch_end(self, *args, **kwargs):
        self._note()

    def on_fit_end(self, *args, **kwargs):
        self._note()


@pytest.mark.parametrize(
    "step_name, why",
    [("model_step", "must contain a \\{step\\} field"), ("s{step}/x", "file name")],
)
def test_a_step_name_without_its_field_or_with_a_folder_is_refused(data, step_name, why):
    handler = make_handler(data)
    with pytest.raises(ValueError, match=why):
        handler.auto_save(None, every_n_train_steps=5, step_name=step_name)
    with pytest.raises(ValueError, match="differ from the epoch files' name"):
        handler.auto_save(None, name="m{step}", every_n_train_steps=5, step_name="m{step}")
    with pytest.raises(ValueError, match="positive int"):
        handler.auto_save(None, every_n_train_steps=-3)


def test_a_malformed_epoch_in_progress_is_left_out_with_a_warning(data):
    """A file is data: an inside-an-epoch resume point of the wrong shape is not handed to
    Lightning's loop; training starts the next epoch."""
    make_handler(data).save("between.pth")
    ckpt = torch.load("between.pth", weights_only=True)
    ckpt["epoch_in_progress"] = {"train_stats": "not sums"}
    torch.save(ckpt, "inside.pth")
    with pytest.warns(UserWarning, match="loop state is malformed"):
        loaded = NNHandler.load("inside.pth")
    assert loaded.run_state.resume_point is None
    assert NNHandler.load("between.pth").run_state.resume_point is None


# ------------------------------------------------------------ learning-rate finder
def test_find_lr_suggests_a_rate_and_leaves_the_setup_as_it_was(data):
    handler = make_handler(data)
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    before = weights(handler)
    optimizer_state = handler.optimizer.state_dict()
    rng = torch.get_rng_state()

    found = handler.find_lr(min_lr=1e-5, max_lr=1.0, num_training=30)
    assert found.suggestion is not None and 1e-5 <= found.suggestion <= 1.0
    assert len(found.lrs) == len(found.losses) == 30
    assert found.lrs == sorted(found.lrs) and found.lrs[0] == pytest.approx(1e-5)
    assert all(np.isfinite(found.losses[:10]))
    assert same(weights(handler), before)
    assert handler.optimizer.state_dict() == optimizer_state
    assert handler.scheduler.base_lrs == [0.1] and handler.train_losses == []
    assert torch.equal(torch.get_rng_state(), rng)

    applied = handler.find_lr(min_lr=1e-5, max_lr=1.0, num_training=30, apply=True)
    assert applied.applied and applied.suggestion == found.suggestion
    assert handler.optimizer.param_groups[0]["lr"] == pytest.approx(found.suggestion)
    assert handler.scheduler.base_lrs == [pytest.approx(found.suggestion)]


def test_lightning_tuner_and_learning_rate_finder_read_the_exported_modules_rate(data):
    """``Tuner.lr_find`` and the ``LearningRateFinder`` callback find the optimizer's rate on the
    exported module (``lr``) and, as Lightning does by default, apply their suggestion to it."""
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateFinder
    from lightning.pytorch.tuner import Tuner

    def trainer(**kwargs):
        return L.Trainer(
            max_epochs=1,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            **kwargs,
        )

    handler = make_handler(data, batch_size=1)  # one epoch holds the search
    module = handler.to_lightning_module()
    assert module.lr == 0.1
    found = Tuner(trainer()).lr_find(
        module, train_dataloaders=handler.train_loader, min_lr=1e-5, num_training=30
    )
    assert 1e-5 <= found.suggestion() <= 1.0
    assert handler.optimizer.param_groups[0]["lr"] == pytest.approx(found.suggestion())

    handler = make_handler(data, batch_size=1)  # one epoch holds the search
    finder = LearningRateFinder(min_lr=1e-5, num_training_steps=30)
    trainer(callbacks=[finder]).fit(
        handler.to_lightning_module(), train_dataloaders=handler.train_loader
    )
    suggestion = finder.optimal_lr.suggestion()
    assert 1e-5 <= suggestion <= 1.0
    assert handler.optimizer.param_groups[0]["lr"] == pytest.approx(suggestion)
    assert len(handler.train_losses) == 1  # then it trained, at the suggested rate


def test_train_refuses_lightnings_learning_rate_finder_and_names_find_lr(data):
    """Inside train() (manual optimization) its scheduler would never step: refused early."""
    from lightning.pytorch.callbacks import LearningRateFinder

    handler = make_handler(data)
    with pytest.raises(TypeError, match=r"find_lr\(.*apply=True\)"):
        handler.add_callback(LearningRateFinder())
    assert handler.callbacks == []


# -------------------------------------------------------------- mid-epoch auto-saves
@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "2-workers"])
def test_a_mid_epoch_auto_save_resumes_to_the_same_weights(data, workers):
    """Auto-saves every 5 steps (6 batches an epoch, shuffled): resuming from the one written
    after step 10, inside epoch 2, reads that epoch's remaining batches in the same order and
    ends with the weights and history of one uninterrupted run."""
    pytest.importorskip("torchdata")
    loader = {"batch_size": 8, "shuffle": True, "num_workers": workers}
    if workers:
        loader["persistent_workers"] = True  # see docs/data.md, "Worker processes"

    def handler_saving_steps(directory):
        handler = make_handler(data, **loader)
        handler.auto_save(None, save_path=directory, every_n_train_steps=5)
        return handler

    one_run = handler_saving_steps("one_run")
    one_run.train(3, seed=2, progress_bar=False)
    assert sorted(os.listdir("one_run")) == [f"model_step{s:08d}.pth" for s in (5, 10, 15)]

    resumed = NNHandler.load(os.path.join("one_run", "model_step00000010.pth"))
    assert resumed.train_losses == one_run.train_losses[:1]
    resumed.set_train_loader(data, **loader)
    resumed.auto_save(None, save_path="resumed", every_n_train_steps=5)
    resumed.train(2, progress_bar=False)
    assert sorted(os.listdir("resumed")) == ["model_step00000015.pth"]
    assert same(weights(resumed), weights(one_run))
    assert resumed.train_losses == one_run.train_losses


# ------------------------------------------------------------------- data modules
class RecordingDataModule(L.LightningDataModule):
    """Records Lightning's calls; its state counts the training loaders it served."""

    def __init__(self, data, calls):
        super().__init__()
        self.data, self.calls, self.served = data, calls, 0

    def prepare_data(self):
        self.calls.append("prepare_data")

    def setup(self, stage):
        self.calls.append("setup:fit" if stage == "fit" else f"setup:{stage}")

    def train_dataloader(self):
        self.served += 1
        return DataLoader(self.data, batch_size=8, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=16)

    def state_dict(self):
        return {"served": self.served}

    def load_state_dict(self, state):
        self.served = state["served"]


def test_a_data_module_trains_saves_its_state_and_resumes(data):
    def handler_on(datamodule):
        torch.manual_seed(0)
        handler = NNHandler(TinyNet)
        handler.set_optimizer(torch.optim.SGD, lr=0.1, momentum=0.9)
        handler.set_loss_fn(nn.functional.cross_entropy)
        handler.set_train_loader(datamodule)  # a data module is set_datamodule's
        return handler

    one_run = handler_on(RecordingDataModule(data, []))
    one_run.train(4, seed=3, progress_bar=False)
    assert len(one_run.val_losses) == 4  # its val_dataloader validates

    calls = []
    first = handler_on(RecordingDataModule(data, calls))
    first.train(2, seed=3, progress_bar=False)
    assert calls == ["prepare_data", "setup:fit"]
    first.save("dm.pth")

    resumed = NNHandler.load("dm.pth")
    calls.clear()
    datamodule = RecordingDataModule(data, calls)
    resumed.set_datamodule(datamodule)
    assert datamodule.served == 1 and resumed.datamodule is datamodule  # its saved state
    resumed.train(2, progress_bar=False)
    assert calls == ["prepare_data", "setup:fit"] and datamodule.served == 2
    assert same(weights(resumed), weights(one_run))
    assert resumed.train_losses == one_run.train_losses
    assert resumed.val_losses == one_run.val_losses


def test_set_datamodule_refuses_what_is_not_a_data_module(data):
    handler = make_handler(data)
    with pytest.raises(TypeError, match="LightningDataModule.*set_train_loader"):
        handler.set_datamodule(data)
