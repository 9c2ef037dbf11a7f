"""Export: handler → plain LightningModule / DataModule / CLI YAML, and checkpoints both ways."""

from __future__ import annotations

import importlib
import logging
import math
import os
import sys
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from models import TinyNet, accuracy
from nn_handler.adapters.config.writer import ConfigExportError, build_config
from nn_handler.adapters.export import ExportedHandlerModule
from torch.utils.data import TensorDataset

from nn_handler import NNHandler
from nn_handler.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "cli"))


def make_handler(data, seed: int = 3, **loader) -> NNHandler:
    torch.manual_seed(seed)  # the model's initial weights
    handler = NNHandler(TinyNet, hidden=12)
    handler.set_optimizer(torch.optim.Adam, lr=1e-2)
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.7)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.add_metric("acc", accuracy)
    handler.set_train_loader(data, batch_size=loader.get("batch_size", 48), shuffle=True)
    handler.set_val_loader(data, batch_size=96)
    return handler


def plain_trainer(epochs: int, **kwargs) -> L.Trainer:
    kwargs.setdefault("logger", False)
    kwargs.setdefault("enable_checkpointing", False)
    return L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **{"default_root_dir": ".", **kwargs},
    )


def fit_exported(handler: NNHandler, epochs: int, seed: int | None = 5, **kwargs) -> L.Trainer:
    if seed is not None:
        handler.seed = seed  # what train(seed=...) does before fitting
    trainer = plain_trainer(epochs, **kwargs)
    trainer.fit(handler.to_lightning_module(), datamodule=handler.to_datamodule())
    return trainer


class EpochRecorder(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int, float]] = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append((epoch, logs["epoch"], logs["val_loss"]))


def test_exported_module_is_a_plain_lightning_module_with_the_same_losses(cls_data):
    reference = make_handler(cls_data)
    reference.train(3, seed=5, progress_bar=False)

    handler = make_handler(cls_data)
    module = handler.to_lightning_module()
    cls = type(module)
    assert isinstance(module, L.LightningModule)
    assert (
        getattr(importlib.import_module(cls.__module__), cls.__qualname__) is ExportedHandlerModule
    )
    assert module.model is handler.module and module.optimizer is handler.optimizer
    fit_exported(handler, 3)

    assert len(handler.train_losses) == 3
    for key in ("train_losses", "val_losses"):
        assert getattr(handler, key) == pytest.approx(getattr(reference, key), abs=1e-6)
    assert handler.val_metrics_history["acc"] == pytest.approx(
        reference.val_metrics_history["acc"], abs=1e-6
    )
    for p, q in zip(handler.module.parameters(), reference.module.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    assert handler.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.7**3)


def test_exported_module_validates_tests_and_predicts(cls_data):
    handler = make_handler(cls_data)
    handler.train(1, seed=0, progress_bar=False)
    module, data = handler.to_lightning_module(), handler.to_datamodule()
    trainer = plain_trainer(1)

    (val,) = trainer.validate(module, datamodule=data, verbose=False)
    with torch.no_grad():
        x, y = cls_data.tensors
        logits = handler.module(x)
    assert val["val_loss"] == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, y)), abs=1e-5
    )
    assert val["val_acc"] == pytest.approx(float(accuracy(logits, y)), abs=1e-6)
    (test,) = trainer.test(module, datamodule=data, verbose=False)
    assert test["test_loss"] == pytest.approx(val["val_loss"], abs=1e-7)
    predictions = torch.cat(trainer.predict(module, datamodule=data))
    assert torch.allclose(predictions, logits, atol=1e-6)


def test_native_and_lightning_callbacks_run_in_a_plain_trainer(cls_data):
    handler = make_handler(cls_data)
    recorder = EpochRecorder()
    handler.add_callback(recorder)
    # EarlyStopping on the *training* loss checks at train-epoch end: the epoch logs must exist
    # by then, i.e. EpochLogs runs before the Trainer's own callbacks.
    fit_exported(handler, 5, callbacks=[EarlyStopping(monitor="loss", patience=0, min_delta=10.0)])
    assert [(e, n) for e, n, _ in recorder.seen] == [(0, 1), (1, 2)]
    assert [v for *_, v in recorder.seen] == pytest.approx(handler.val_losses)
    assert len(handler.train_losses) == 2


def test_epochs_continue_from_the_handler_history(cls_data):
    reference = make_handler(cls_data)
    reference.train(2, seed=1, progress_bar=False)
    reference.train(2, progress_bar=False)

    handler = make_handler(cls_data)
    handler.train(2, seed=1, progress_bar=False)
    recorder = EpochRecorder()
    handler.add_callback(recorder)
    trainer = fit_exported(handler, 4, seed=None)
    assert [n for _, n, _ in recorder.seen] == [3, 4]
    assert trainer.current_epoch == 4
    assert handler.train_losses == pytest.approx(reference.train_losses, abs=1e-6)
    assert handler.run_state.global_step == reference.run_state.global_step == 16


def test_auto_save_runs_inside_a_plain_trainer(cls_data, tmp_path):
    handler = make_handler(cls_data)
    handler.auto_save(2, save_path=str(tmp_path / "auto"), name="m{epoch:02d}")
    fit_exported(handler, 3)
    names = sorted(p.name for p in (tmp_path / "auto").iterdir())
    assert names == ["m02.pth", "m03.pth"]
    restored = NNHandler.load(str(tmp_path / "auto" / "m03.pth"))
    assert restored.train_losses == pytest.approx(handler.train_losses)

    # An AutoSaver file also resumes a plain Lightning fit of a freshly exported handler.
    fresh = make_handler(cls_data, seed=42)
    fresh.auto_save(2, save_path=str(tmp_path / "auto"), name="m{epoch:02d}")
    trainer = plain_trainer(4)
    trainer.fit(
        fresh.to_lightning_module(),
        datamodule=fresh.to_datamodule(),
        ckpt_path=str(tmp_path / "auto" / "m03.pth"),
    )
    assert fresh.train_losses[:3] == handler.train_losses and len(fresh.train_losses) == 4
    assert trainer.global_step == 16
    assert sorted(p.name for p in (tmp_path / "auto").iterdir())[-1] == "m04.pth"


def test_to_datamodule_serves_the_handler_loaders(cls_data):
    handler = make_handler(cls_data)
    data = handler.to_datamodule()
    assert data.train_dataloader() is handler.train_loader
    assert data.val_dataloader() is handler.val_loader
    bare = NNHandler(TinyNet)
    with pytest.raises(RuntimeError, match="no training data.*set_train_loader"):
        bare.to_datamodule()
    with pytest.raises(RuntimeError, match="optimizer .*loss function"):
        bare.to_lightning_module()


# ------------------------------------------------------------------ checkpoints both ways
def test_lightning_resumes_from_a_handler_file(cls_data, tmp_path):
    reference = make_handler(cls_data)
    reference.train(2, seed=1, progress_bar=False)
    reference.train(2, progress_bar=False)

    first = make_handler(cls_data)
    first.train(2, seed=1, progress_bar=False)
    path = str(tmp_path / "h.pth")
    first.save(path)

    fresh = make_handler(cls_data, seed=99)  # other initial weights: the file must win
    trainer = plain_trainer(4)
    trainer.fit(fresh.to_lightning_module(), datamodule=fresh.to_datamodule(), ckpt_path=path)
    assert len(fresh.train_losses) == 4
    assert fresh.train_losses[:2] == first.train_losses
    assert trainer.global_step == reference.run_state.global_step
    assert fresh.optimizer.param_groups[0]["lr"] == pytest.approx(
        reference.optimizer.param_groups[0]["lr"]
    )
    assert all(math.isfinite(v) for v in fresh.train_losses)
    assert fresh.train_losses[2] < fresh.train_losses[0]


def test_handler_loads_what_lightning_model_checkpoint_writes(cls_data, tmp_path):
    handler = make_handler(cls_data)
    saver = LightningModelCheckpoint(dirpath=str(tmp_path / "ckpt"), save_last=True)
    fit_exported(handler, 3, callbacks=[saver], enable_checkpointing=True)
    ckpt = str(tmp_path / "ckpt" / "last.ckpt")
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2

    loaded = NNHandler.load(ckpt)
    for (name, p), q in zip(
        handler.module.state_dict().items(), loaded.module.state_dict().values()
    ):
        assert torch.equal(p, q), name
    assert loaded.train_losses == handler.train_losses
    assert loaded.val_metrics_history == handler.val_metrics_history
    saved_state = handler.optimizer.state_dict()["state"]
    loaded_state = loaded.optimizer.state_dict()["state"]
    assert all(
        torch.equal(saved_state[k]["exp_avg"], loaded_state[k]["exp_avg"]) for k in saved_state
    )
    assert loaded.optimizer.param_groups[0]["lr"] == pytest.approx(
        handler.optimizer.param_groups[0]["lr"]
    )

    loaded.set_train_loader(cls_data, batch_size=48, shuffle=True)  # data are not in checkpoints
    loaded.train(1, progress_bar=False)  # continues: epoch 4
    assert len(loaded.train_losses) == 4 and loaded.run_state.global_step == 16


# ----------------------------------------------------------------------- export_config
def test_export_config_reports_what_has_no_import_path(cls_data, tmp_path):
    handler = make_handler(cls_data)
    handler.set_loss_fn(lambda out, y: torch.nn.functional.cross_entropy(out, y))
    path = tmp_path / "run.yaml"
    with pytest.raises(ConfigExportError, match=r"model\.loss: a lambda") as info:
        handler.export_config(str(path))
    assert any(
        p.startswith("data.init_args.train_dataset") and "TensorDataset" in p
        for p in info.value.problems
    )
    assert not path.exists()

    with pytest.warns(UserWarning, match="model.loss"):
        handler.export_config(str(path), strict=False, epochs=2)
    text = path.read_text()
    assert "# NOT WRITABLE" in text
    config = yaml.safe_load(text)
    assert config["model"]["loss"] is None
    assert config["data"]["init_args"]["train_dataset"] is None
    assert config["trainer"]["max_epochs"] == 2
    # Written like any file (mode from the umask, not a temp file's 0600), nothing left beside it.
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]


def test_export_config_writes_classes_and_train_arguments(tmp_path):
    from blobs import GaussianBlobs
    from mlp import MLP
    from mlp import accuracy as mlp_accuracy

    handler = NNHandler(MLP, hidden=16)
    handler.set_optimizer(torch.optim.SGD, lr=0.1, momentum=0.9)
    handler.set_loss_fn(torch.nn.CrossEntropyLoss(label_smoothing=0.1))
    handler.add_metric("accuracy", mlp_accuracy)
    handler.set_train_loader(GaussianBlobs(n_samples=64, seed=4), batch_size=16, shuffle=True)
    handler.auto_save(3, save_path="ck", overwrite=True)
    handler.export_config(
        str(tmp_path / "run.yaml"), epochs=7, seed=11, validate_every=0, gradient_clipping_norm=1.5
    )
    config = yaml.safe_load((tmp_path / "run.yaml").read_text())
    assert config["seed_everything"] == 11
    trainer = config["trainer"]
    assert (trainer["max_epochs"], trainer["limit_val_batches"], trainer["gradient_clip_val"]) == (
        7,
        0,
        1.5,
    )
    model = config["model"]
    assert model["model"] == {"class_path": "mlp.MLP", "init_args": {"hidden": 16}}
    assert model["optimizer"] == {
        "class_path": "torch.optim.sgd.SGD",
        "init_args": {"lr": 0.1, "momentum": 0.9},
    }
    assert model["loss"] == {
        "class_path": "torch.nn.modules.loss.CrossEntropyLoss",
        "init_args": {"label_smoothing": 0.1},
    }
    assert model["metrics"] == {"accuracy": "mlp.accuracy"}
    assert model["auto_save"]["interval"] == 3 and model["auto_save"]["overwrite"] is True
    assert model["seed"] == 11
    data = config["data"]["init_args"]
    assert data["train_dataset"] == {
        "class_path": "blobs.GaussianBlobs",
        "init_args": {"n_samples": 64, "seed": 4},
    }
    assert data["train_loader"] == {"batch_size": 16, "shuffle": True}


def test_export_config_reads_loader_settings_from_a_dataloader(tmp_path):
    from blobs import GaussianBlobs

    handler = make_handler(GaussianBlobs(n_samples=32, n_features=8))
    handler.set_train_loader(
        torch.utils.data.DataLoader(
            GaussianBlobs(n_samples=32), batch_size=8, shuffle=True, drop_last=True
        )
    )
    handler.set_val_loader(TensorDataset(torch.zeros(4, 8), torch.zeros(4).long()))
    config, problems = build_config(handler.setup, handler.runtime)
    assert config["data"]["init_args"]["train_loader"] == {
        "batch_size": 8,
        "shuffle": True,
        "drop_last": True,
    }
    assert problems == [
        "data.init_args.val_dataset: TensorDataset's argument 'tensors' cannot be read back from "
        "the object (store each __init__ argument as an attribute of the same name)"
    ]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_validate_test_and_predict_after_fit_raise_no_callback_notice(cls_data, tmp_path):
    """Lightning's "callbacks returned in configure_callbacks will override" notice is for users
    who configure the same callback twice; fitting and evaluating an export must not print it."""
    handler = make_handler(cls_data)
    handler.auto_save(1, save_path=str(tmp_path / "auto"), name="m{epoch:02d}")
    module, data = handler.to_lightning_module(), handler.to_datamodule()
    records = _Records()
    lightning_log = logging.getLogger("lightning.pytorch")
    lightning_log.addHandler(records)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # The Trainer's defaults: its own ModelCheckpoint, which the AutoSaver replaces.
            trainer = plain_trainer(1, enable_checkpointing=True, default_root_dir=str(tmp_path))
            trainer.fit(module, datamodule=data)
            (val,) = trainer.validate(module, datamodule=data, verbose=False)
            trainer.test(module, datamodule=data, verbose=False)
            trainer.predict(module, datamodule=data)
            fresh = plain_trainer(1, enable_checkpointing=True, default_root_dir=str(tmp_path))
            fresh.validate(module, datamodule=data, verbose=False)
    finally:
        lightning_log.removeHandler(records)
    notices = [m for m in records.messages + [str(w.message) for w in caught] if "overrid" in m]
    assert notices == []
    # Each callback is on the Trainer once, the AutoSaver wrote its file, and the Trainer's
    # default checkpoint (replaced by the AutoSaver, as Lightning's rule has it) wrote nothing.
    kinds = [type(c).__name__ for c in trainer.callbacks]
    assert kinds.count("EpochLogs") == 1 and kinds.count("AutoSaver") == 1
    assert "ModelCheckpoint" not in kinds
    assert sorted(p.name for p in (tmp_path / "auto").iterdir()) == ["m01.pth"]
    assert not list(tmp_path.rglob("*.ckpt"))
    assert val["val_loss"] == pytest.approx(handler.val_losses[-1], abs=1e-6)


def test_a_users_own_model_checkpoint_is_kept_without_auto_save(cls_data, tmp_path):
    handler = make_handler(cls_data)
    checkpoint = LightningModelCheckpoint(dirpath=str(tmp_path / "ckpts"), save_last=True)
    trainer = fit_exported(handler, 1, callbacks=[checkpoint], enable_checkpointing=True)
    trainer.validate(handler.to_lightning_module(), datamodule=handler.to_datamodule())
    assert checkpoint in trainer.callbacks
    assert (tmp_path / "ckpts" / "last.ckpt").exists()
