"""The AutoSaver: SPEC §4 semantics as a Lightning ModelCheckpoint."""

from __future__ import annotations

import os

import nn_handler.adapters.hooks.autosaver as autosaver_mod
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from models import TinyNet, accuracy
from nn_handler.adapters.hooks.autosaver import AutoSaver
from torch import nn

from nn_handler import NNHandler
from nn_handler._ops.auto_save import auto_save_name, should_auto_save


def _handler(data, validate=True):
    torch.manual_seed(0)
    h = NNHandler(TinyNet)
    h.set_optimizer(torch.optim.SGD, lr=0.1)
    h.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    h.set_loss_fn(nn.functional.cross_entropy)
    h.add_metric("accuracy", accuracy)
    h.set_train_loader(data, batch_size=96)
    if validate:
        h.set_val_loader(data, batch_size=192)
    return h


def _files(directory="ck"):
    return set(os.listdir(directory)) if os.path.isdir(directory) else set()


def _names(*epochs):
    return {f"m{e:02d}.pth" for e in epochs}


# interval, epochs of each train() call, overwrite, save_on_last_epoch -> files on disk
TABLE = [
    (1, [3], False, True, _names(1, 2, 3)),
    (2, [5], False, False, _names(2, 4)),
    (2, [5], False, True, _names(2, 4, 5)),
    (2, [5], True, True, _names(5)),
    (2, [5], True, False, _names(4)),
    (-1, [3], False, False, _names(3)),
    (-1, [2, 2], False, True, _names(2, 4)),
    (-1, [2, 2], True, True, _names(4)),
    (3, [2, 2], False, False, _names(3)),  # counted across train() calls
    (3, [2, 2], False, True, _names(2, 3, 4)),
    (2, [2, 3], True, True, _names(5)),
    (0, [2], False, True, set()),
    (None, [2], False, True, set()),
]


@pytest.mark.parametrize("interval, calls, overwrite, on_last, expected", TABLE)
def test_file_set(cls_data, interval, calls, overwrite, on_last, expected):
    h = _handler(cls_data, validate=False)
    h.auto_save(interval, save_path="ck", name="m{epoch:02d}", overwrite=overwrite)
    for epochs in calls:
        h.train(epochs, progress_bar=False, save_on_last_epoch=on_last)
    assert _files() == expected
    if expected:
        assert h.run_state.saver.last_saved == os.path.join("ck", max(expected))


def test_rule_function_matches_spec():
    assert [e for e in range(1, 7) if should_auto_save(2, e, e == 6, False)] == [2, 4, 6]
    assert [e for e in range(1, 6) if should_auto_save(2, e, e == 5, True)] == [2, 4, 5]
    assert [e for e in range(1, 6) if should_auto_save(-1, e, e == 5, False)] == [5]
    assert not any(should_auto_save(i, 5, True, True) for i in (0, None))


def test_names_from_epoch_logs(cls_data):
    h = _handler(cls_data)
    h.auto_save(1, save_path="ck", name="e{epoch:02d}_{val_loss:.4f}_{accuracy:.2f}")
    h.train(2, progress_bar=False)
    acc = h.train_metrics_history["accuracy"]
    assert _files() == {f"e{i + 1:02d}_{h.val_losses[i]:.4f}_{acc[i]:.2f}.pth" for i in range(2)}


def test_missing_key_warns_and_falls_back(cls_data):
    h = _handler(cls_data)
    h.auto_save(1, save_path="ck", name="best_{val_f1:.2f}")
    with pytest.warns(UserWarning, match=r"'best_\{val_f1:.2f\}' cannot be formatted.*val_f1"):
        h.train(1, progress_bar=False)
    assert _files() == {"best_epoch01.pth"}


def test_name_helper_keeps_pth_and_directory_is_created(cls_data):
    assert auto_save_name("x{epoch}.pth", {"epoch": 3}, 3) == "x3.pth"
    with pytest.warns(UserWarning, match="'nope'"):
        assert auto_save_name("{nope}", {"epoch": 3}, 3) == "model_epoch03.pth"
    h = _handler(cls_data, validate=False)
    h.auto_save(1, save_path=os.path.join("deep", "er"), name="m{epoch}")
    h.train(1, progress_bar=False)
    assert os.listdir(os.path.join("deep", "er")) == ["m1.pth"]


def test_overwrite_writes_new_before_removing_previous(cls_data, monkeypatch):
    seen = []
    real = autosaver_mod.atomic_save

    def recording(obj, path):
        seen.append((os.path.basename(path), sorted(_files())))
        real(obj, path)

    monkeypatch.setattr(autosaver_mod, "atomic_save", recording)
    h = _handler(cls_data, validate=False)
    h.auto_save(1, save_path="ck", name="m{epoch:02d}", overwrite=True)
    h.train(3, progress_bar=False)
    # When each new file is written, the previous one is still there.
    assert seen == [("m01.pth", []), ("m02.pth", ["m01.pth"]), ("m03.pth", ["m02.pth"])]
    assert _files() == _names(3)


def test_saves_once_per_epoch_after_history_and_scheduler(cls_data, monkeypatch):
    written = []
    real = autosaver_mod.atomic_save

    def recording(obj, path):
        written.append(path)
        real(obj, path)

    monkeypatch.setattr(autosaver_mod, "atomic_save", recording)
    h = _handler(cls_data)
    h.auto_save(1, save_path="ck", name="m{epoch:02d}")
    h.train(2, progress_bar=False)
    assert [os.path.basename(p) for p in written] == ["m01.pth", "m02.pth"]  # not at val end
    first = torch.load("ck/m01.pth", weights_only=True)
    assert first["train_losses"] == h.train_losses[:1] and first["val_losses"] == h.val_losses[:1]
    assert first["scheduler_state_dict"]["last_epoch"] == 1  # stepped for epoch 1 already
    assert first["auto_saved"] is True and first["global_step"] == 2
    assert first["auto_saver_state"]["last_saved_model"] == os.path.join("ck", "m01.pth")


def test_auto_saver_state_round_trips_and_overwrite_continues(cls_data):
    h = _handler(cls_data, validate=False)
    h.auto_save(1, save_path="ck", name="m{epoch:02d}", overwrite=True)
    h.train(2, progress_bar=False)
    loaded = NNHandler.load("ck/m02.pth")
    assert (loaded.save_interval, loaded.save_path, loaded.save_model_name) == (
        1,
        "ck",
        "m{epoch:02d}",
    )
    assert loaded.overwrite_last_saved is True
    assert (
        loaded.run_state.saver.last_saved is None
    )  # what a file claims to have written is not ours
    loaded.set_train_loader(cls_data, batch_size=96)
    loaded.train(1, progress_bar=False)
    # Only files this process wrote are replaced: the file it was loaded from stays.
    assert _files() == {"m02.pth", "m03.pth"}


def test_is_a_model_checkpoint_and_file_is_weights_only(cls_data):
    h = _handler(cls_data, validate=False)
    saver = AutoSaver(h.setup.auto_save, h.run_state.saver, lambda trainer: {})
    assert isinstance(saver, ModelCheckpoint) and saver.save_on_last_epoch
    h.auto_save(-1, save_path="ck")
    h.train(1, progress_bar=False)
    ckpt = torch.load("ck/model_epoch01.pth", weights_only=True)
    assert {
        "state_dict",
        "loops",
        "optimizer_states",
        "lr_schedulers",
        "model_state_dict",
        "model_class",
        "callbacks",
    } <= set(ckpt)
    assert ckpt["callbacks"]["nn_handler.AutoSaver"]["save_interval"] == -1


# ------------------------------------------------- what the AutoSaver may delete (issue 12)
def test_a_fork_into_a_new_directory_never_deletes_the_original(cls_data, tmp_path):
    h = _handler(cls_data, validate=False)
    h.auto_save(1, save_path="runA", name="m{epoch:02d}", overwrite=True)
    h.train(2, progress_bar=False)
    assert _files("runA") == _names(2)
    forked = NNHandler.load("runA/m02.pth")
    forked.set_train_loader(cls_data, batch_size=96)
    forked.auto_save(1, save_path="runB", name="m{epoch:02d}", overwrite=True)
    forked.train(2, progress_bar=False)
    assert _files("runA") == _names(2)  # runA's only checkpoint survives the fork
    assert _files("runB") == _names(4)


def test_a_hostile_auto_saver_state_deletes_nothing_and_writes_nowhere(cls_data, tmp_path):
    h = _handler(cls_data, validate=False)
    h.auto_save(1, save_path="ck", name="m{epoch:02d}", overwrite=True)
    h.train(1, progress_bar=False)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    elsewhere = tmp_path / "elsewhere"
    ckpt = torch.load("ck/m01.pth", weights_only=True)
    for save_path, expect_refused in ((str(elsewhere), True), ("../escape", True), ("ck", False)):
        ckpt["auto_saver_state"] = {
            "save_interval": 1,
            "save_path": save_path,
            "save_model_name": "m{epoch:02d}",
            "overwrite_last_saved": True,
            "last_saved_model": str(victim),
        }
        torch.save(ckpt, "ck/hostile.pth")
        if expect_refused:
            with pytest.warns(UserWarning, match="auto-save settings are not used"):
                loaded = NNHandler.load("ck/hostile.pth")
            assert loaded.save_interval is None
        else:
            loaded = NNHandler.load("ck/hostile.pth")  # its own directory: the resume recipe
            assert loaded.save_path == "ck"
        loaded.set_train_loader(cls_data, batch_size=96)
        loaded.train(2, progress_bar=False)
        assert victim.read_text() == "precious"
        assert not elsewhere.exists() and not (tmp_path.parent / "escape").exists()
    # The accepted resume replaced only what it wrote itself: the loaded files are all there.
    assert {"m01.pth", "hostile.pth", "m03.pth"} <= _files("ck")


def test_names_cannot_leave_the_save_directory(cls_data):
    h = _handler(cls_data, validate=False)
    for name in ("../../escaped_{epoch}", "sub/m{epoch}", "/abs/m{epoch}", ".."):
        with pytest.raises(ValueError, match="file name, not a path"):
            h.auto_save(1, save_path="ck", name=name)
    with pytest.raises(ValueError, match="file name, not a path"):
        h.save_model_name = "../up{epoch}"
    assert auto_save_name("{epoch}", {"epoch": "../x"}, 3) == "model_epoch03.pth"


def test_auto_save_starts_a_new_series(cls_data):
    h = _handler(cls_data, validate=False)
    h.auto_save(1, save_path="one", name="m{epoch:02d}", overwrite=True)
    h.train(1, progress_bar=False)
    h.auto_save(1, save_path="two", name="m{epoch:02d}", overwrite=True)
    h.train(1, progress_bar=False)
    assert _files("one") == _names(1) and _files("two") == _names(2)


# ----------------------------------------------- deletion by identity, not by name (issue 22)
def test_another_process_rewrite_of_the_previous_file_survives(cls_data):
    a = _handler(cls_data, validate=False)
    a.auto_save(1, save_path="ck", name="m{epoch:02d}", overwrite=True)
    a.train(1, progress_bar=False)
    b = _handler(cls_data, validate=False)  # a second run auto-saving into the same folder
    b.auto_save(1, save_path="ck", name="m{epoch:02d}", overwrite=True)
    b.train(1, progress_bar=False)  # atomically replaces ck/m01.pth: a new file of that name
    theirs = open("ck/m01.pth", "rb").read()
    a.train(1, progress_bar=False)  # writes m02.pth; m01.pth is no longer the file it wrote
    assert _files() == _names(1, 2)
    assert open("ck/m01.pth", "rb").read() == theirs
    # A rewrite in place (same inode, other size) is not ours either.
    open("ck/m02.pth", "wb").write(b"someone else's bytes")
    a.train(1, progress_bar=False)
    assert _files() == _names(1, 2, 3)
    assert open("ck/m02.pth", "rb").read() == b"someone else's bytes"
    # Our own previous file is still replaced as before.
    a.train(1, progress_bar=False)
    assert _files() == _names(1, 2, 4)


def test_saver_bookkeeping_identity_round_trips_and_a_state_without_it_deletes_nothing(
    cls_data,
):
    h = _handler(cls_data, validate=False)
    h.auto_save(1, save_path="ck", name="m{epoch:02d}", overwrite=True)
    h.train(1, progress_bar=False)
    sent = h.run_state.worker_state()
    back = NNHandler(TinyNet).run_state
    back.load_worker_state(sent)
    path = os.path.join("ck", "m01.pth")
    assert back.saver.identities == h.run_state.saver.identities != {}
    assert back.saver.may_delete(path, os.path.join("ck", "m02.pth"), "ck")
    old = dict(sent, saver={k: v for k, v in sent["saver"].items() if k != "identities"})
    back.load_worker_state(old)  # bookkeeping from before identities were recorded
    assert back.saver.wrote(path)
    assert not back.saver.may_delete(path, os.path.join("ck", "m02.pth"), "ck")


def test_overwrite_under_an_unchanged_name_keeps_the_new_file(cls_data):
    h = _handler(cls_data, validate=False)
    h.auto_save(1, save_path="ck", name="latest", overwrite=True)
    # Each save replaces the file the epoch before wrote; the last one stays.
    h.train(2, progress_bar=False)
    assert _files() == {"latest.pth"}
    assert len(NNHandler.load("ck/latest.pth").train_losses) == 2
    h.train(1, progress_bar=False)
    assert _files() == {"latest.pth"}
    assert len(NNHandler.load("ck/latest.pth").train_losses) == 3


def test_a_failed_save_leaves_the_last_good_file_to_be_replaced(cls_data, monkeypatch):
    """Disk full during the epoch-2 save: the error reaches the user, the epoch-1 file is intact,
    and the next good save replaces it. A file of an earlier run that the failed save meant to
    replace is not this process's: it stays."""
    os.makedirs("ck")
    with open("ck/m02.pth", "wb") as f:
        f.write(b"an earlier run's file")
    h = _handler(cls_data, validate=False)
    h.auto_save(1, save_path="ck", name="m{epoch:02d}", overwrite=True)
    h.train(1, progress_bar=False)
    assert _files() == _names(1, 2)

    real_fsync, failing = os.fsync, [True]

    def disk_full(fd):
        if failing:
            failing.clear()
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        h.train(1, progress_bar=False)
    assert not failing  # the write failed once, as planned
    assert _files() == _names(1, 2)
    with open("ck/m02.pth", "rb") as f:
        assert f.read() == b"an earlier run's file"
    assert len(NNHandler.load("ck/m01.pth").train_losses) == 1

    h.train(1, progress_bar=False)
    assert _files() == _names(2, 3)
    with open("ck/m02.pth", "rb") as f:
        assert f.read() == b"an earlier run's file"
