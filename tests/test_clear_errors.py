"""Clear errors for damaged, special or too-new checkpoint files, bad metric values, empty data
and failed writes; which file a directory load takes."""

from __future__ import annotations

import errno
import os
import threading
import zipfile

import pytest
import torch
from models import TinyNet
from torch.utils.data import TensorDataset

import nn_handler._env.atomic as atomic_mod
from nn_handler import NNHandler
from nn_handler.checkpoint import FORMAT_VERSION


def make_handler(data: TensorDataset | None = None, **loader) -> NNHandler:
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.Adam, lr=1e-2)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    if data is None:
        x = torch.randn(32, 8, generator=torch.Generator().manual_seed(0))
        data = TensorDataset(x, (x[:, 0] > 0).long())
    handler.set_train_loader(data, **(loader or {"batch_size": 16}))
    return handler


@pytest.fixture
def saved() -> str:
    make_handler().save("good.pth")
    return "good.pth"


# ------------------------------------------------------- damaged files
def test_a_flipped_zip64_disk_count_names_the_file(saved):
    data = bytearray(open(saved, "rb").read())
    locator = data.rfind(b"PK\x06\x07")  # zip64 end-of-central-directory locator
    assert locator > 0
    data[locator + 16] ^= 0x02  # "total number of disks": 1 -> 3
    with open("flipped.pth", "wb") as f:
        f.write(data)
    with pytest.raises(zipfile.BadZipFile):  # what the zip reader itself says, without a name
        zipfile.is_zipfile("flipped.pth")
    for load in (NNHandler.load, lambda p: NNHandler.initialize_from_checkpoint(p, TinyNet)):
        with pytest.raises(ValueError, match="'flipped.pth' is truncated or corrupted"):
            load("flipped.pth")


def test_the_legacy_opt_in_does_not_read_a_damaged_file_unchecked(saved):
    """allow_legacy_pickle is for pickles that need code; a damaged file keeps its error
    instead of being unpickled without the checksum check."""
    data = bytearray(open(saved, "rb").read())
    index = data.rfind(b"PK\x01\x02") // 2  # inside a stored record, before the directory
    data[index] ^= 0xFF
    with open("flipped.pth", "wb") as f:
        f.write(data)
    for kwargs in ({}, {"allow_legacy_pickle": True}):
        with pytest.raises(ValueError, match="'flipped.pth' is corrupted: the checksum"):
            NNHandler.load("flipped.pth", **kwargs)


def test_a_fifo_is_refused_before_it_is_opened():
    os.mkfifo("pipe.pth")

    def unblock() -> None:  # without the check a reader would wait here for ever
        try:
            fd = os.open("pipe.pth", os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return
        os.close(fd)

    guard = threading.Timer(20, unblock)
    guard.start()
    try:
        for kwargs in ({}, {"allow_legacy_pickle": True}):
            with pytest.raises(ValueError, match=r"'pipe.pth' is a FIFO \(named pipe\), not a"):
                NNHandler.load("pipe.pth", **kwargs)
        with pytest.raises(ValueError, match="not a regular file"):
            NNHandler.initialize_from_checkpoint("pipe.pth", TinyNet)
    finally:
        guard.cancel()
        unblock()


def test_a_checkpoint_of_a_newer_format_is_refused_naming_both_versions(saved):
    ckpt = torch.load(saved, weights_only=True)
    ckpt["checkpoint_format"] = FORMAT_VERSION + 1
    torch.save(ckpt, "newer.pth")
    expected = (
        rf"'newer.pth' was written in checkpoint format {FORMAT_VERSION + 1}, newer than "
        rf"format {FORMAT_VERSION} that nn_handler .* reads. Upgrade nn_handler"
    )
    for kwargs in ({}, {"allow_legacy_pickle": True}):
        with pytest.raises(ValueError, match=expected):
            NNHandler.load("newer.pth", **kwargs)
    with pytest.raises(ValueError, match=expected):
        NNHandler.initialize_from_checkpoint("newer.pth", TinyNet)
    os.makedirs("runs")
    os.replace("newer.pth", "runs/newer.pth")
    with pytest.warns(UserWarning, match="Skipping .*newer than format"):
        with pytest.raises(FileNotFoundError, match="No NNHandler checkpoint"):
            NNHandler.load("runs")
    ckpt["checkpoint_format"] = "2.0"
    torch.save(ckpt, "odd.pth")
    with pytest.raises(ValueError, match="checkpoint_format='2.0', which is not a format"):
        NNHandler.load("odd.pth")


def test_a_lightning_resume_from_a_newer_format_is_refused():
    import lightning as L

    handler = make_handler()
    handler.train(1, progress_bar=False)
    handler.save("run.pth")
    ckpt = torch.load("run.pth", weights_only=True)
    ckpt["checkpoint_format"] = FORMAT_VERSION + 1
    torch.save(ckpt, "newer.pth")
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    with pytest.raises(ValueError, match="Lightning resumed from was written in checkpoint format"):
        trainer.fit(handler.to_lightning_module(), handler.train_loader, ckpt_path="newer.pth")
    from nn_handler.checkpoint import restore_handler_extras

    with pytest.raises(ValueError, match=f"format {FORMAT_VERSION + 1}, newer than"):
        restore_handler_extras(handler.setup, handler.run_state, ckpt)


# ------------------------------------------------------------- metrics
@pytest.mark.parametrize(
    "value, kind", [(None, "NoneType"), ("high", "str"), ({"acc": 1.0}, "dict")]
)
def test_a_metric_returning_a_non_number_is_named(value, kind):
    handler = make_handler()
    handler.add_metric("my_score", lambda outputs, targets: value)
    with pytest.raises(TypeError, match=rf"Metric 'my_score' returned {kind}"):
        handler.train(1, progress_bar=False)


def test_metrics_returning_numbers_of_any_kind_still_work():
    import numpy as np

    handler = make_handler()
    handler.add_metric("t", lambda o, t: torch.tensor(0.5))
    handler.add_metric("f", lambda o, t: 0.25)
    handler.add_metric("n", lambda o, t: np.float32(0.75))
    handler.add_metric("b", lambda o, t: True)
    handler.train(1, progress_bar=False)
    metrics = handler.train_metrics_history
    assert (metrics["t"], metrics["f"], metrics["n"], metrics["b"]) == ([0.5], [0.25], [0.75], [1])


# ----------------------------------------------------------- empty data
def test_an_empty_training_set_is_an_error_before_training():
    empty = TensorDataset(torch.randn(0, 8), torch.zeros(0, dtype=torch.long))
    handler = make_handler(empty, batch_size=4)
    with pytest.raises(ValueError, match="train loader yields no batch: 0 samples"):
        handler.train(2, progress_bar=False)
    assert handler.train_losses == []


def test_a_loader_whose_only_batch_is_dropped_is_an_error():
    x = torch.randn(5, 8)
    handler = make_handler(
        TensorDataset(x, torch.zeros(5, dtype=torch.long)), batch_size=8, drop_last=True
    )
    with pytest.raises(ValueError, match="5 samples and drop_last=True drops"):
        handler.train(1, progress_bar=False)


# ------------------------------------------------------- failed writes
def _fail_writes(monkeypatch) -> None:
    def full_disk(obj, f, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_mod.torch, "save", full_disk)


def test_a_failed_first_save_does_not_claim_a_previous_file(monkeypatch):
    handler = make_handler()
    _fail_writes(monkeypatch)
    with pytest.raises(OSError) as failed:
        handler.save("new.pth")
    assert "no file was written" in str(failed.value)
    assert "intact" not in str(failed.value)
    assert os.listdir(".") == []


def test_a_failed_save_over_a_file_says_the_previous_file_is_intact(saved, monkeypatch):
    before = open(saved, "rb").read()
    _fail_writes(monkeypatch)
    with pytest.raises(OSError, match="the previous file is intact") as failed:
        make_handler().save(saved)
    assert failed.value.errno == errno.ENOSPC
    assert open(saved, "rb").read() == before


# ------------------------------------------------------- directory load
def test_a_directory_load_takes_the_most_epochs_whether_auto_or_manual():
    handler = make_handler()
    handler.auto_save(1, save_path="runs", name="model_epoch{epoch:02d}")
    handler.train(1, progress_bar=False)  # auto-saves runs/model_epoch01.pth
    handler.auto_save(None)
    handler.train(2, progress_bar=False)
    handler.save("runs/manual.pth")  # 3 epochs, not an auto-save
    assert sorted(os.listdir("runs")) == ["manual.pth", "model_epoch01.pth"]
    os.utime("runs/manual.pth", (1, 1))  # older on disk: epochs decide, not file times
    assert len(NNHandler.load("runs").train_losses) == 3


def test_a_directory_load_breaks_ties_by_modification_time(saved):
    os.makedirs("runs")
    handler = make_handler()
    handler.train(1, progress_bar=False)
    handler.save("runs/a.pth")
    handler.save("runs/b.pth")
    # A non-checkpoint claiming many epochs does not count.
    torch.save({"train_losses": [1.0] * 9, "state_dict": {}}, "runs/c.pth")
    os.utime("runs/a.pth", ns=(2_000_000_000, 2_000_000_000))
    os.utime("runs/b.pth", ns=(1_000_000_000, 1_000_000_000))
    assert NNHandler.load("runs").train_losses == handler.train_losses
    from nn_handler.checkpoint._read import newest_in_directory

    assert newest_in_directory("runs").endswith("a.pth")
    os.utime("runs/b.pth", ns=(3_000_000_000, 3_000_000_000))
    assert newest_in_directory("runs").endswith("b.pth")
