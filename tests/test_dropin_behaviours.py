"""Documented behaviours of the original that a migrating script relies on (issue 13).

The pages themselves run in test_original_docs.py; this module pins each behaviour down with its
edge cases: enum parsing, parent folders of every file written, weights from an original
checkpoint, and the per-rank loaders (the two-process run is in test_ddp_launch.py).
"""

from __future__ import annotations

import enum
import logging
import os
from pathlib import Path

import pytest
import torch
from models import TinyNet, accuracy
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, TensorDataset

from nn_handler import LoggingMode, ModelCheckpoint, ModelType, NNHandler
from nn_handler._env.dist_env import DistEnv
from nn_handler._state.data import make_slot, use_shuffle_seed
from nn_handler.enums import InvalidEnumValue


# ------------------------------------------------------------------------------ ModelType
class OtherKind(enum.Enum):
    REG = "regression"
    NUMBER = 3


@pytest.mark.parametrize(
    ("text", "member"),
    [
        ("generative", ModelType.GENERATIVE),
        ("  Score_Based ", ModelType.SCORE_BASED),
        ("CLASSIFICATION", ModelType.CLASSIFICATION),
        ("regression", ModelType.REGRESSION),
    ],
)
def test_model_type_from_string(text, member):
    assert ModelType.from_string(text) is member
    assert ModelType.parse(text) is member


def test_model_type_parse_takes_members_and_other_enums():
    assert ModelType.parse(ModelType.SCORE_BASED) is ModelType.SCORE_BASED
    assert ModelType.parse(OtherKind.REG) is ModelType.REGRESSION  # "other enum members"
    assert LoggingMode.parse("Both") is LoggingMode.BOTH


@pytest.mark.parametrize(
    "call",
    [
        lambda: ModelType.from_string("diffusion"),
        lambda: ModelType.parse("diffusion"),
        lambda: ModelType.parse(OtherKind.NUMBER),
        lambda: ModelType.parse(3),
        lambda: ModelType.from_string(None),
    ],
)
def test_unknown_model_types_name_the_valid_values(call):
    with pytest.raises(ValueError, match="'classification', 'regression', 'generative', "):
        call()
    # parse documents a TypeError for input it cannot convert: the error is both.
    with pytest.raises(TypeError):
        call()
    assert issubclass(InvalidEnumValue, ValueError) and issubclass(InvalidEnumValue, TypeError)


def test_handler_model_type_error_is_unchanged():
    with pytest.raises(ValueError, match=r"Unknown ModelType 'vision'; valid values are"):
        NNHandler(TinyNet, model_type="vision")


# --------------------------------------------------------------------- parent folders
def _trained(cls_data, epochs: int = 2) -> NNHandler:
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.set_train_loader(cls_data, batch_size=64)
    handler.set_val_loader(cls_data, batch_size=64)
    handler.add_metric("top-1 acc", accuracy)
    handler.train(epochs, progress_bar=False)
    return handler


def test_plots_create_their_folders_and_use_the_original_names(cls_data):
    pytest.importorskip("matplotlib")
    handler = _trained(cls_data)
    handler.plot_losses(save_path="out/plots/loss.png")
    handler.plot_losses(save_path="out/no_extension")  # matplotlib adds .png, as the original
    handler.plot_metrics(save_path_prefix="out/metrics/run1")
    assert Path("out/plots/loss.png").read_bytes()[:4] == b"\x89PNG"
    assert Path("out/no_extension.png").read_bytes()[:4] == b"\x89PNG"
    # {prefix}_metric_{name}.png, non-alphanumeric characters of the name as "_".
    assert os.listdir("out/metrics") == ["run1_metric_top_1_acc.png"]


@pytest.mark.parametrize("mode", [LoggingMode.FILE, LoggingMode.BOTH, "file"])
def test_log_file_folder_is_created(mode):
    handler = NNHandler(TinyNet, logger_mode=mode, logger_filename="logs/run/train.log")
    handler.logger.info("first record")
    for h in handler.logger.handlers:
        h.flush()
    text = Path("logs/run/train.log").read_text()
    assert "NNHandler ready: TinyNet" in text and "first record" in text
    assert isinstance(handler.logger, logging.Logger)


def test_checkpoints_and_auto_saves_create_their_folders(cls_data):
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.set_train_loader(cls_data, batch_size=64)
    handler.auto_save(1, save_path="runs/a/auto", name="ep{epoch}")
    handler.add_callback(ModelCheckpoint("runs/b/ck/e{epoch}", save_best_only=False))
    handler.add_callback(
        ModelCheckpoint("runs/c/w", monitor="loss", save_weights_only=True, save_best_only=True)
    )
    handler.train(1, progress_bar=False)
    handler.save("runs/d/e/final.pth")
    assert os.listdir("runs/a/auto") == ["ep1.pth"]
    assert os.listdir("runs/b/ck") == ["e1.pth"]
    assert set(torch.load("runs/c/w.pth", weights_only=True)) == set(handler.module.state_dict())
    assert NNHandler.load("runs/d/e/final.pth").train_losses == handler.train_losses


# ------------------------------------------------------------ original checkpoints, weights
def test_initialize_from_checkpoint_reads_an_original_file_with_the_opt_in(legacy_file):
    path, expected = legacy_file
    import legacy_models

    with pytest.raises(ValueError, match="needs to run code.*allow_legacy_pickle=True"):
        NNHandler.initialize_from_checkpoint(path, legacy_models.TinyClassifier)
    handler = NNHandler.initialize_from_checkpoint(
        path, legacy_models.TinyClassifier, allow_legacy_pickle=True, hidden=16
    )
    probe = torch.linspace(-1, 1, 40).reshape(5, 8)
    with torch.no_grad():
        out = handler.module.eval()(probe)
    torch.testing.assert_close(out, torch.tensor(expected["probe_outputs"]), atol=1e-6, rtol=0)
    assert handler.train_losses == [] and handler.optimizer is None  # weights only
    assert "allow_legacy_pickle" not in handler.model_kwargs


# --------------------------------------------------------------------- per-rank loaders
def _data(n: int) -> TensorDataset:
    return TensorDataset(torch.arange(n).float().unsqueeze(1), torch.arange(n))


def _rank(rank: int) -> DistEnv:
    return DistEnv(distributed=True, rank=rank, world_size=2, source="torchrun")


@pytest.mark.parametrize("shuffle", [True, False])
def test_loaders_are_sharded_when_set(shuffle):
    seen = []
    for rank in (0, 1):
        slot = make_slot(
            _data(10), {"batch_size": 2, "shuffle": shuffle}, "train", dist=_rank(rank), seed=5
        )
        sampler = slot.loader.sampler
        assert isinstance(sampler, DistributedSampler)
        assert (sampler.shuffle, sampler.seed, sampler.rank) == (shuffle, 5, rank)
        assert slot.loader_kwargs == {"batch_size": 2, "shuffle": shuffle}  # what the user gave
        seen.append([int(i) for _, y in slot.loader for i in y])
    assert sorted(seen[0] + seen[1]) == list(range(10))  # disjoint shards covering the data


def test_validation_shards_are_unpadded_and_a_late_seed_reaches_the_sampler(monkeypatch):
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)  # Lightning's seed, when one was set
    val = [make_slot(_data(5), {"batch_size": 2}, "val", dist=_rank(r)).loader for r in (0, 1)]
    assert [len(v.sampler) for v in val] == [3, 2]  # 5 samples: none repeated
    assert all(isinstance(v.sampler, DistributedSampler) and not v.sampler.shuffle for v in val)
    slot = make_slot(_data(8), {"shuffle": True}, "train", dist=_rank(0))
    assert slot.loader.sampler.seed == 0
    use_shuffle_seed(slot, 123)  # handler.seed set after set_train_loader, used at train()
    assert slot.loader.sampler.seed == 123


def test_a_late_seed_leaves_the_users_own_distributed_sampler_alone():
    own = DistributedSampler(_data(8), num_replicas=2, rank=0, seed=9)
    slot = make_slot(DataLoader(_data(8), sampler=own), {}, "train", dist=_rank(0))
    assert slot.loader.sampler is own and slot.shard_sampler is None
    use_shuffle_seed(slot, 123)
    assert own.seed == 9  # the user chose it; only samplers nn_handler put on a loader follow


def test_one_process_loaders_are_left_as_they_are():
    slot = make_slot(_data(4), {"shuffle": True}, "train", dist=DistEnv())
    assert isinstance(slot.loader.sampler, RandomSampler)
    given = DataLoader(_data(4))
    assert make_slot(given, {}, "train", dist=DistEnv()).loader is given


def test_create_distributed_loader_is_the_handlers_loader():
    from nn_handler.utils.ddp_helpers import _create_distributed_loader

    loader, sampler = _create_distributed_loader(_data(6), {"batch_size": 3}, "cpu", print)
    assert loader.batch_size == 3 and sampler is loader.sampler
    assert [len(b[0]) for b in loader] == [3, 3]


def test_logger_is_none_only_off_rank_zero(monkeypatch):
    handler = NNHandler(TinyNet, logger_mode=LoggingMode.CONSOLE)
    assert isinstance(handler.logger, logging.Logger)
    monkeypatch.setattr(handler.runtime, "dist", DistEnv(distributed=True, rank=1, world_size=2))
    assert handler.logger is None  # the two-process run checks this for real


def test_callbacks_and_state_files_read_the_rank_from_the_handlers_runtime(
    monkeypatch, tmp_path, caplog
):
    from nn_handler.callbacks._common import is_rank_zero
    from nn_handler.checkpointing import save_single_file

    handler = NNHandler(TinyNet)
    assert is_rank_zero(handler)
    monkeypatch.setattr(handler.runtime, "dist", DistEnv(distributed=True, rank=1, world_size=2))
    assert not is_rank_zero(handler)
    with caplog.at_level(logging.INFO, logger="nn_handler.checkpointing"):
        save_single_file(handler, {"step": 3}, str(tmp_path / "state.pth"))
    assert f"Rank 1: saved the state to {tmp_path / 'state.pth'}." in caplog.messages
    assert torch.load(tmp_path / "state.pth", weights_only=True) == {"step": 3}


def test_history_groups_the_four_history_properties(cls_data):
    handler = _trained(cls_data, epochs=2)
    history = handler.history
    assert history == {
        "train_losses": handler.train_losses,
        "val_losses": handler.val_losses,
        "train_metrics_history": handler.train_metrics_history,
        "val_metrics_history": handler.val_metrics_history,
    }
    assert len(history["train_losses"]) == 2 and set(history["val_metrics_history"]) == {
        "top-1 acc"
    }
    history["train_losses"].clear()  # a copy: the handler's history is untouched
    assert len(handler.train_losses) == 2
