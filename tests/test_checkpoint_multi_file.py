"""``NNHandler.save(path, single_file=False)``: one file per key, read back by ``NNHandler.load``
with the same safety checks as the single file."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from models import TinyNet, accuracy

from nn_handler import NNHandler
from nn_handler.checkpoint import MANIFEST, is_multi_file


class _Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def handler(cls_data):
    handler = NNHandler(TinyNet, hidden=12)
    handler.set_optimizer(torch.optim.Adam, lr=0.01)
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.9)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.add_metric("acc", accuracy)
    handler.set_train_loader(cls_data, batch_size=64)
    handler.train(2, progress_bar=False)
    return handler


def test_round_trip(handler, cls_data):
    handler.save("run", single_file=False)
    assert is_multi_file("run")
    manifest = json.loads(Path("run", MANIFEST).read_text())
    files = manifest["files"]
    assert sorted(os.listdir("run")) == sorted([MANIFEST, *files.values()])
    assert files["model_state_dict"] == "model_state_dict.pth"
    assert "state_dict" not in files  # Lightning's copy of the weights is not duplicated
    # Each file alone is the key's value, readable without running code.
    weights = torch.load("run/model_state_dict.pth", weights_only=True)
    assert _same_tensors(weights, handler.module.state_dict())
    assert torch.load("run/train_losses.pth", weights_only=True) == handler.train_losses

    loaded = NNHandler.load("run")
    assert _same_tensors(loaded.module.state_dict(), handler.module.state_dict())
    assert loaded.train_losses == handler.train_losses
    assert loaded.train_metrics_history == handler.train_metrics_history
    assert loaded.model_kwargs == {"hidden": 12}
    assert loaded.scheduler.state_dict() == handler.scheduler.state_dict()
    assert str(loaded.optimizer.state_dict()) == str(handler.optimizer.state_dict())
    loaded.set_train_loader(cls_data, batch_size=64)
    loaded.train(1, progress_bar=False)
    assert len(loaded.train_losses) == 3  # training continues

    weights_only = NNHandler.initialize_from_checkpoint("run", TinyNet, hidden=12)
    assert _same_tensors(weights_only.module.state_dict(), handler.module.state_dict())


def test_a_multi_file_directory_is_not_taken_for_a_folder_of_checkpoints(handler):
    handler.save("ckpts/old.pth")
    handler.train(1, progress_bar=False)
    handler.save("ckpts/multi", single_file=False)  # inside the folder, with more epochs
    # The folder means "its newest checkpoint file"; the multi-file directory is not a file.
    assert len(NNHandler.load("ckpts").train_losses) == 2
    # The multi-file directory itself is one checkpoint, even with a stray .pth beside its files.
    torch.save({"model_state_dict": {}, "model_class": "models:TinyNet"}, "ckpts/multi/x.pth")
    assert len(NNHandler.load("ckpts/multi").train_losses) == 3


def test_saving_again_replaces_the_whole_set_atomically(handler):
    handler.save("run", single_file=False)
    handler.train(1, progress_bar=False)
    handler.save("run", single_file=False)
    assert not [n for n in os.listdir(".") if n.startswith(".")]  # no staging or old copies
    assert len(NNHandler.load("run").train_losses) == 3


def test_a_failed_save_leaves_the_previous_one_intact(handler, monkeypatch):
    handler.save("run", single_file=False)
    before = sorted(os.listdir("run"))
    import nn_handler.checkpoint._multi as multi

    calls = []
    real = multi.atomic_save

    def fail_third(obj, path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(obj, path)

    monkeypatch.setattr(multi, "atomic_save", fail_third)
    handler.train(1, progress_bar=False)
    with pytest.raises(OSError, match="No space left"):
        handler.save("run", single_file=False)
    assert sorted(os.listdir("run")) == before
    assert not [n for n in os.listdir(".") if n.startswith(".")]
    assert len(NNHandler.load("run").train_losses) == 2


def test_refuses_to_replace_what_is_not_a_multi_file_checkpoint(handler):
    os.makedirs("photos")
    Path("photos/cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(FileExistsError, match="not a multi-file NNHandler checkpoint"):
        handler.save("photos", single_file=False)
    assert os.listdir("photos") == ["cat.jpg"]
    handler.save("single.pth")
    with pytest.raises(NotADirectoryError, match="single_file=True"):
        handler.save("single.pth", single_file=False)
    os.makedirs("empty")
    handler.save("empty", single_file=False)  # an empty directory is fine
    assert is_multi_file("empty")


# ----------------------------------------------------------------- the reader's checks
@pytest.fixture
def saved(handler):
    handler.save("run", single_file=False)
    return Path("run")


def _manifest(run: Path) -> dict:
    return json.loads((run / MANIFEST).read_text())


def _write_manifest(run: Path, manifest: dict) -> None:
    (run / MANIFEST).write_text(json.dumps(manifest))


def test_a_pickle_that_runs_code_is_refused(saved, tmp_path):
    marker = tmp_path / "PWNED"
    target = saved / "model_kwargs.pth"
    torch.save({"hidden": _Payload(marker)}, target)
    manifest = _manifest(saved)
    manifest["sizes"]["model_kwargs"] = target.stat().st_size
    _write_manifest(saved, manifest)
    with pytest.raises(ValueError, match="needs to run code"):
        NNHandler.load(saved)
    assert not marker.exists()
    target.write_bytes(pickle.dumps({"hidden": _Payload(marker)}))
    manifest["sizes"]["model_kwargs"] = target.stat().st_size
    _write_manifest(saved, manifest)
    with pytest.raises(ValueError):
        NNHandler.load(saved)
    assert not marker.exists()


def test_a_flipped_byte_fails_the_checksum(saved):
    target = saved / "model_state_dict.pth"
    data = bytearray(target.read_bytes())
    index = data.rfind(b"PK\x01\x02") // 2  # inside a stored record, before the directory
    data[index] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="model_state_dict.pth"):
        NNHandler.load(saved)


def test_truncated_and_missing_files(saved):
    target = saved / "optimizer_state_dict.pth"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated or replaced"):
        NNHandler.load(saved)
    target.unlink()
    with pytest.raises(FileNotFoundError, match="optimizer_state_dict.pth.*missing"):
        NNHandler.load(saved)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m["files"].update(model_state_dict="../outside.pth"), "damaged manifest"),
        (lambda m: m["files"].update(model_state_dict="/etc/passwd"), "damaged manifest"),
        (lambda m: m.update(format_version=99), "format version 99"),
        (lambda m: m.update(format="something else"), "not an NNHandler multi-file"),
        (lambda m: m.update(files=["model_state_dict.pth"]), "damaged manifest"),
    ],
)
def test_a_manifest_cannot_point_outside_or_lie(saved, change, message):
    manifest = _manifest(saved)
    change(manifest)
    _write_manifest(saved, manifest)
    with pytest.raises(ValueError, match=message):
        NNHandler.load(saved)


def test_an_unreadable_manifest(saved):
    (saved / MANIFEST).write_text("{not json")
    with pytest.raises(ValueError, match="not a readable checkpoint manifest"):
        NNHandler.load(saved)


def test_a_set_without_the_handler_keys_is_not_a_checkpoint(saved):
    manifest = _manifest(saved)
    del manifest["files"]["model_class"]
    _write_manifest(saved, manifest)
    with pytest.raises(ValueError, match="not an NNHandler checkpoint"):
        NNHandler.load(saved)


def test_a_newer_format_is_refused_as_for_one_file(saved):
    from nn_handler.checkpoint import FORMAT_VERSION

    target = saved / "checkpoint_format.pth"
    torch.save(FORMAT_VERSION + 1, target)
    manifest = _manifest(saved)
    manifest["sizes"]["checkpoint_format"] = target.stat().st_size
    _write_manifest(saved, manifest)
    with pytest.raises(
        ValueError, match=rf"'run' was written in checkpoint format {FORMAT_VERSION + 1}"
    ):
        NNHandler.load(saved)
