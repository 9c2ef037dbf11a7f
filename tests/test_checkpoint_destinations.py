"""A checkpoint never chooses where files are written (issue 22, rows 1 and 2).

A callback rebuilt from a file may write only inside the checkpoint's folder or the working
directory, checked when it writes: after its template is formatted, ``~`` and variables expanded
and symlinks resolved. Each test watches effects: every file outside the sandbox (a fake home, a
fake ``site-packages``) is byte-for-byte unchanged and nothing new appears there.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import pytest
import torch
from models import TinyNet
from torch import nn

from nn_handler import NNHandler
from nn_handler._env.write_guard import (
    DestinationRefused,
    checked_destination,
    roots_for_checkpoint,
)
from nn_handler.callbacks import ImagePredictionVisualizer, ModelCheckpoint, TensorBoardLogger


def _tree(root: Path, skip: Path) -> dict[str, str]:
    """Every file under ``root`` but outside ``skip``: its path and a hash of its bytes."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if Path(folder, d) != skip]
        for name in files:
            path = Path(folder, name)
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """``(work, outside)``: the working directory (the checkpoint lives in ``work/ckpts``) and a
    victim tree beside it: a fake home (``$HOME``) and a fake venv's ``site-packages``."""
    work, home = tmp_path / "work", tmp_path / "home"
    site = tmp_path / "venv" / "lib" / "site-packages"
    for folder in (work / "ckpts", home, site):
        folder.mkdir(parents=True)
    (site / "victim.pth").write_text("import sys\n")
    (home / "notes.txt").write_text("mine\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return work, tmp_path


def _trained(data, callbacks) -> NNHandler:
    torch.manual_seed(0)
    h = NNHandler(TinyNet)
    h.set_optimizer(torch.optim.SGD, lr=0.1)
    h.set_loss_fn(nn.functional.cross_entropy)
    h.set_train_loader(data, batch_size=96)
    h.set_val_loader(data, batch_size=96)
    for cb in callbacks:
        h.add_callback(cb)
    return h


def _plant(h: NNHandler, work: Path, paths: dict[str, dict[str, str]]) -> str:
    """Save ``h``, then rewrite its callbacks' stored path arguments as an adversary would."""
    h.save(str(work / "ckpts" / "good.pth"))
    ckpt = torch.load(work / "ckpts" / "good.pth", weights_only=True)
    for key, changes in paths.items():
        ckpt["callback_kwargs"][key].update(changes)
    evil = str(work / "ckpts" / "evil.pth")
    torch.save(ckpt, evil)
    return evil


def _load_and_train(path: str, data) -> tuple[NNHandler, str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = NNHandler.load(path)
        h.set_train_loader(data, batch_size=96)
        h.set_val_loader(data, batch_size=96)
        h.train(1, progress_bar=False)
    return h, " ".join(str(w.message) for w in caught)


def test_row1_a_template_that_formats_to_an_absolute_path_writes_nothing_there(sandbox, cls_data):
    work, root = sandbox
    victim = root / "venv" / "lib" / "site-packages" / "victim"
    # Relative and without '..' before formatting; '/' + the rest after: an absolute path.
    template = "{epoch!s:/>1.0}" + str(victim).lstrip("/")
    assert template.format(epoch=1) == str(victim)
    h = _trained(cls_data, [ModelCheckpoint("ck/best", save_best_only=False)])
    evil = _plant(h, work, {"ModelCheckpoint": {"filepath": template}})
    before = _tree(root, work)

    loaded, said = _load_and_train(evil, cls_data)

    assert _tree(root, work) == before  # victim.pth untouched, nothing new outside
    assert [type(c).__name__ for c in loaded.callbacks] == ["ModelCheckpoint"]
    assert "Refused to write ModelCheckpoint's checkpoint" in said and str(victim) in said
    # The same callback passed by the user writes where the user says.
    mine = ModelCheckpoint(str(root / "mine" / "best"), save_best_only=False)
    h2 = NNHandler.load(evil, callbacks=[mine])
    h2.set_train_loader(cls_data, batch_size=96)
    h2.set_val_loader(cls_data, batch_size=96)
    h2.train(1, progress_bar=False)
    assert (root / "mine" / "best.pth").is_file()


def test_row2_home_variables_and_symlinks_are_resolved_before_writing(
    sandbox, cls_data, monkeypatch
):
    work, root = sandbox
    outside = root / "elsewhere"
    outside.mkdir()
    (work / "link").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("NNH_SOMEWHERE", str(outside))
    h = _trained(
        cls_data,
        [
            TensorBoardLogger(log_dir="tb"),
            TensorBoardLogger(log_dir="tb2"),
            ImagePredictionVisualizer(log_freq_epoch=1, num_samples=2, save_dir="viz"),
            ImagePredictionVisualizer(log_freq_epoch=1, num_samples=2, save_dir="viz2"),
        ],
    )
    evil = _plant(
        h,
        work,
        {
            "TensorBoardLogger": {"log_dir": "~/x"},  # Lightning expands '~'
            "TensorBoardLogger#1": {"log_dir": "$NNH_SOMEWHERE/tb"},
            "ImagePredictionVisualizer": {"save_dir": str(outside / "viz")},
            "ImagePredictionVisualizer#1": {"save_dir": "link/viz"},  # a symlink out
        },
    )
    before = _tree(root, work)

    loaded, said = _load_and_train(evil, cls_data)

    assert _tree(root, work) == before
    assert not (root / "home" / "x").exists() and os.listdir(outside) == []
    # The absolute save_dir is refused when loading; the others when they come to write.
    assert "save_dir" in said and said.count("Refused to write") >= 3
    assert sorted(type(c).__name__ for c in loaded.callbacks) == [
        "ImagePredictionVisualizer",
        "TensorBoardLogger",
        "TensorBoardLogger",
    ]


def test_a_restored_callback_still_writes_inside_its_folders(sandbox, cls_data):
    work, root = sandbox
    h = _trained(
        cls_data,
        [
            ModelCheckpoint("ck/e{epoch:02d}", save_best_only=False),
            ImagePredictionVisualizer(log_freq_epoch=1, num_samples=2, save_dir="viz"),
        ],
    )
    h.save(str(work / "ckpts" / "good.pth"))
    before = _tree(root, work)
    loaded, said = _load_and_train(str(work / "ckpts" / "good.pth"), cls_data)
    assert "Refused" not in said
    assert (work / "ck" / "e01.pth").is_file()
    assert (work / "viz" / "epoch_0001_predictions.png").is_file()
    assert _tree(root, work) == before


def test_checked_destination_reads_paths_as_writers_do(tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "ckpts").mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path))
    roots = roots_for_checkpoint(str(work / "ckpts" / "a.pth"))
    for fine in ("a.pth", "sub/b.pth", str(work / "ckpts" / "c.pth"), "ckpts", "~x/a.pth"):
        assert checked_destination(fine, roots) == fine
    for bad in ("/etc/x.pth", "../x.pth", "~/x.pth", "$HOME/x.pth", str(tmp_path)):
        with pytest.raises(DestinationRefused, match="trust_checkpoint=True"):
            checked_destination(bad, roots)
    # A user's own writer (no roots) is not checked.
    assert checked_destination("/etc/x.pth", None) == "/etc/x.pth"


def test_row7_a_resumed_lightning_checkpoint_state_names_no_file_to_delete(sandbox, cls_data):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint as PLModelCheckpoint

    work, root = sandbox
    dirpath = work / "lightning_ckpts"
    dirpath.mkdir()
    precious = dirpath / "precious.ckpt"  # the user's own file inside their dirpath
    precious.write_bytes(b"mine")
    h = _trained(cls_data, [])
    h.train(1, progress_bar=False)
    h.save(str(work / "ckpts" / "good.pth"))
    ckpt = torch.load(work / "ckpts" / "good.pth", weights_only=True)

    def callback() -> PLModelCheckpoint:
        return PLModelCheckpoint(dirpath=str(dirpath), save_top_k=1, every_n_epochs=1)

    ckpt.setdefault("callbacks", {})[callback().state_key] = {
        "monitor": None,
        "best_model_score": None,
        "best_model_path": str(precious),
        "current_score": None,
        "dirpath": str(dirpath),
        "best_k_models": {str(precious): torch.tensor(0.0)},
        "kth_best_model_path": str(precious),
        "kth_value": torch.tensor(0.0),
        "last_model_path": str(precious),
    }
    torch.save(ckpt, work / "ckpts" / "evil.pth")

    fresh = _trained(cls_data, [])
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=[callback()],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(
            fresh.to_lightning_module(),
            datamodule=fresh.to_datamodule(),
            ckpt_path=str(work / "ckpts" / "evil.pth"),
        )
    assert precious.read_bytes() == b"mine"
    assert any(
        "precious.ckpt" in str(w.message) and "not restored" in str(w.message) for w in caught
    )
    # The resume itself worked, and the callback's own top-1 rule still replaces its own files.
    assert len(fresh.train_losses) == 3
    assert sorted(p.name for p in dirpath.iterdir()) == ["epoch=2-step=6.ckpt", "precious.ckpt"]


def test_loaded_auto_save_settings_are_checked_when_they_write(sandbox, cls_data):
    work, root = sandbox
    outside = root / "elsewhere"
    outside.mkdir()
    h = _trained(cls_data, [])
    h.auto_save(1, save_path="runs", name="m{epoch:02d}")
    h.train(1, progress_bar=False)
    # The saved save_path "runs" is relative and inside: accepted when loading. Replaced by a
    # symlink out of the working directory, it is refused where the AutoSaver writes.
    (work / "runs").rename(work / "kept")
    (work / "runs").symlink_to(outside, target_is_directory=True)
    before = _tree(root, work)
    loaded, said = _load_and_train(str(work / "kept" / "m01.pth"), cls_data)
    assert loaded.save_path == "runs" and loaded.setup.auto_save.write_roots is not None
    assert _tree(root, work) == before and os.listdir(outside) == []
    assert "This auto-save is skipped" in said
    # The original's hand-driven auto-save checks the same way.
    from nn_handler.checkpointing.trainer_saving import auto_save_epoch

    with pytest.raises(DestinationRefused, match="an auto-save"):
        auto_save_epoch(loaded, 1, 2, True, {})
    assert _tree(root, work) == before and os.listdir(outside) == []
    # A directory the user sets is the user's choice: no longer checked.
    loaded.save_path = str(root / "mine")
    assert loaded.setup.auto_save.write_roots is None
    loaded.train(1, progress_bar=False)
    assert os.listdir(root / "mine") == ["m03.pth"]
