"""Saving and loading through fsspec URLs (``memory://``, ``file://``) as well as plain paths.

``memory://`` is fsspec's in-process store, standing in for object stores (s3, gcs, ...): a file
appears there whole when its writer closes it. Every test uses its own bucket.
"""

from __future__ import annotations

import os
import uuid

import fsspec
import pytest
import torch
import yaml
from fsspec.implementations.memory import MemoryFileSystem
from torch.utils.data import TensorDataset

from nn_handler import NNHandler


@pytest.fixture
def bucket(monkeypatch, tmp_path):
    """A fresh ``memory://`` folder; the working directory is an empty temporary one, so a URL
    mistaken for a local path would show up there."""
    monkeypatch.chdir(tmp_path)
    name = f"/bucket-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    yield fs, name
    if fs.exists(name):
        fs.rm(name, recursive=True)
    assert os.listdir(tmp_path) == [] or "memory:" not in os.listdir(tmp_path)


def make_handler(seed: int = 0) -> NNHandler:
    torch.manual_seed(seed)
    data = TensorDataset(torch.randn(48, 4), torch.randint(0, 3, (48,)))
    handler = NNHandler(torch.nn.Linear, in_features=4, out_features=3)
    handler.set_optimizer(torch.optim.Adam, lr=0.05)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.set_train_loader(data, batch_size=16, shuffle=True)
    return handler


def same_weights(a: NNHandler, b: NNHandler) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.module.parameters(), b.module.parameters()))


def test_save_and_load_round_trip_through_memory_url(bucket, tmp_path):
    fs, root = bucket
    handler = make_handler()
    handler.train(2, progress_bar=False)
    handler.save(f"memory:/{root}/run/x.pth")
    assert fs.isfile(f"{root}/run/x.pth")
    assert os.listdir(tmp_path) == []  # no local 'memory:' folder
    loaded = NNHandler.load(f"memory:/{root}/run/x.pth")
    assert same_weights(loaded, handler)
    assert loaded.train_losses == handler.train_losses
    weights = NNHandler.initialize_from_checkpoint(
        f"memory:/{root}/run/x.pth", torch.nn.Linear, in_features=4, out_features=3
    )
    assert same_weights(weights, handler)
    state, saved = loaded.optimizer.state_dict(), handler.optimizer.state_dict()
    assert torch.equal(state["state"][0]["exp_avg"], saved["state"][0]["exp_avg"])
    # The loaded handler trains on exactly as the original does.
    data = handler.train_loader.dataset
    loaded.set_train_loader(data, batch_size=16, shuffle=True)
    handler.train(1, progress_bar=False, seed=5)
    loaded.train(1, progress_bar=False, seed=5)
    assert same_weights(loaded, handler)


def test_file_url_is_the_local_file(tmp_path):
    handler = make_handler()
    handler.train(1, progress_bar=False)
    url = (tmp_path / "sub" / "x.pth").as_uri()
    assert url.startswith("file:///")
    handler.save(url)
    assert sorted(os.listdir(tmp_path / "sub")) == ["x.pth"]  # no temp file left, no 'file:'
    state = torch.load(tmp_path / "sub" / "x.pth", weights_only=True)
    assert state["train_losses"] == handler.train_losses
    assert same_weights(NNHandler.load(url), handler)
    assert not (tmp_path / "file:").exists() and not os.path.exists("file:")


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_auto_save_writes_replaces_and_resumes_through_a_url(scheme, bucket, tmp_path):
    fs, root = bucket
    folder = f"memory:/{root}/auto" if scheme == "memory" else (tmp_path / "auto").as_uri()
    handler = make_handler()
    handler.auto_save(1, save_path=folder, name="m{epoch:02d}", overwrite=True)
    handler.train(3, progress_bar=False)
    if scheme == "memory":
        assert fs.ls(f"{root}/auto", detail=False) == [f"{root}/auto/m03.pth"]
        assert os.listdir(tmp_path) == []
    else:
        assert os.listdir(tmp_path / "auto") == ["m03.pth"]

    resumed = NNHandler.load(folder)  # the newest auto-save of the folder
    assert resumed.train_losses == handler.train_losses
    assert (resumed.save_interval, resumed.save_path) == (1, folder)  # its own folder: kept
    resumed.set_train_loader(handler.train_loader.dataset, batch_size=16, shuffle=True)
    resumed.train(1, progress_bar=False)
    names = (
        fs.ls(f"{root}/auto", detail=False)
        if scheme == "memory"
        else sorted(os.listdir(tmp_path / "auto"))
    )
    # The resumed run wrote epoch 4; m03 was not its own file, so it stays.
    assert [n.rsplit("/", 1)[-1] for n in names] == ["m03.pth", "m04.pth"]


def test_on_a_store_the_previous_auto_save_is_deleted_only_while_it_is_our_write(
    bucket, monkeypatch
):
    fs, root = bucket
    handler = make_handler()
    handler.auto_save(1, save_path=f"memory:/{root}/auto", name="m{epoch:02d}", overwrite=True)
    handler.train(1, progress_bar=False)
    theirs = fs.cat(f"{root}/auto/m01.pth")
    fs.pipe(f"{root}/auto/m01.pth", theirs)  # another run rewrites the name: same bytes, new write
    handler.train(1, progress_bar=False)
    assert fs.ls(f"{root}/auto", detail=False) == [f"{root}/auto/m01.pth", f"{root}/auto/m02.pth"]
    handler.train(1, progress_bar=False)  # m02 is still our write: replaced
    assert fs.ls(f"{root}/auto", detail=False) == [f"{root}/auto/m01.pth", f"{root}/auto/m03.pth"]
    # A store whose info gives only a size cannot tell two writes apart: nothing is deleted.
    info = MemoryFileSystem.info
    monkeypatch.setattr(
        MemoryFileSystem,
        "info",
        lambda self, path, **kw: {
            k: v for k, v in info(self, path, **kw).items() if k != "created"
        },
    )
    handler.train(2, progress_bar=False)
    names = [f"{root}/auto/m{n:02d}.pth" for n in (1, 3, 4, 5)]
    assert fs.ls(f"{root}/auto", detail=False) == names


def test_a_checkpoint_may_not_send_auto_saves_to_another_url(bucket):
    fs, root = bucket
    handler = make_handler()
    handler.auto_save(1, save_path=f"memory:/{root}/elsewhere")
    handler.save(f"memory:/{root}/run/x.pth")
    with pytest.warns(UserWarning, match="is not in the place the checkpoint was loaded from"):
        loaded = NNHandler.load(f"memory:/{root}/run/x.pth")
    assert not loaded.save_interval
    with pytest.warns(UserWarning, match="auto-save settings are not used"):
        local = make_handler()
        local.auto_save(1, save_path=f"memory:/{root}/run")
        local.save("local.pth")
        assert not NNHandler.load("local.pth").save_interval


def test_errors_name_the_url(bucket):
    fs, root = bucket
    with pytest.raises(FileNotFoundError, match=f"memory:/{root}/none.pth"):
        NNHandler.load(f"memory:/{root}/none.pth")
    fs.pipe(f"{root}/bad.pth", b"not a checkpoint")
    with pytest.raises(ValueError, match=f"'memory:/{root}/bad.pth' is truncated or corrupted"):
        NNHandler.load(f"memory:/{root}/bad.pth")
    with pytest.raises(ValueError, match="multi-file checkpoints are written to a local disk"):
        make_handler().save(f"memory:/{root}/multi", single_file=False)


def test_export_config_and_plots_go_to_urls(bucket, tmp_path):
    fs, root = bucket
    handler = make_handler()
    handler.train(2, progress_bar=False)
    with pytest.warns(UserWarning, match="TensorDataset"):  # in-memory data: null in the YAML
        handler.export_config(f"memory:/{root}/run.yaml", strict=False)
    config = yaml.safe_load(fs.cat(f"{root}/run.yaml"))
    assert config["model"]["model"]["class_path"] == "torch.nn.modules.linear.Linear"
    handler.plot_losses(save_path=f"memory:/{root}/plots/losses")
    assert fs.cat(f"{root}/plots/losses.png")[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.warns(UserWarning, match="TensorDataset"):
        handler.export_config((tmp_path / "run.yaml").as_uri(), strict=False)
    assert yaml.safe_load((tmp_path / "run.yaml").read_text()) == config
