"""The original's utils/enums.md, run as a user would: the enums through
``nn_handler.utils.enums`` (a re-export) and ``set_train_loader(dataloader_type=...)``.
Adaptations are marked ``# ADAPTED``."""

from __future__ import annotations

import pytest
import torch
from models import TinyNet
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

import nn_handler.enums
import nn_handler.utils.enums
from nn_handler import NNHandler
from nn_handler.dataloaders import EpochShuffleSampler


def test_the_enums_are_re_exported_not_copied():
    for name in ("ModelType", "LoggingMode", "DataLoaderType"):
        assert getattr(nn_handler.utils.enums, name) is getattr(nn_handler.enums, name)
    assert set(nn_handler.utils.enums.__all__) == {"ModelType", "LoggingMode", "DataLoaderType"}


def test_model_type_example():
    from nn_handler.utils.enums import ModelType

    # Direct usage
    model_type = ModelType.CLASSIFICATION

    # From string
    model_type = ModelType.from_string("generative")
    assert model_type is ModelType.GENERATIVE

    # Parse from various formats
    model_type = ModelType.parse("regression")  # From string
    assert model_type is ModelType.REGRESSION
    model_type = ModelType.parse(ModelType.SCORE_BASED)  # From enum instance
    assert model_type is ModelType.SCORE_BASED
    with pytest.raises(ValueError, match="valid values are"):
        ModelType.from_string("clustering")


def test_logging_mode_example(capsys):
    from nn_handler.logger import initialize_logger
    from nn_handler.utils.enums import LoggingMode

    # Configure logging to both console and file
    logger = initialize_logger(
        logger_name="MyLogger", mode=LoggingMode.BOTH, filename="logs/training.log"
    )
    logger.info("hello")
    for handler in logger.handlers:
        handler.flush()
    assert "hello" in open("logs/training.log").read() and "hello" in capsys.readouterr().out
    for handler in list(logger.handlers):  # leave no handler behind for other tests
        logger.removeHandler(handler)
        handler.close()


def test_data_loader_type_values():
    from nn_handler.utils.enums import DataLoaderType

    assert [m.value for m in DataLoaderType] == ["standard", "rank_cached"]
    assert DataLoaderType.parse("RANK_CACHED") is DataLoaderType.RANK_CACHED


def test_data_loader_type_example():
    from torch.utils.data import Dataset  # noqa: F401

    from nn_handler import NNHandler
    from nn_handler.utils.enums import DataLoaderType

    # Create a handler instance
    handler = NNHandler(TinyNet)  # ADAPTED: NNHandler(...) is a placeholder on the page

    # Configure a dataloader with rank caching for better performance in distributed training
    # ADAPTED: Dataset(...) is a placeholder; a TensorDataset of 40 identifiable rows
    my_dataset = TensorDataset(
        torch.arange(40.0).view(-1, 1).expand(-1, 8).contiguous(), torch.arange(40) % 3
    )
    handler.set_train_loader(
        dataset=my_dataset, dataloader_type=DataLoaderType.RANK_CACHED, batch_size=32
    )

    loader = handler.train_loader
    assert isinstance(loader.sampler, EpochShuffleSampler) and loader.batch_size == 32
    rows = [int(v) for x, _ in loader for v in x[:, 0]]
    assert rows == list(range(40))  # shuffle not asked: in order, all of it

    # Training reshuffles every epoch when asked to (set_epoch through Lightning).
    order = []
    handler.set_train_loader(my_dataset, dataloader_type="rank_cached", batch_size=8, shuffle=True)
    sampler = handler.train_loader.sampler
    handler.set_optimizer(torch.optim.SGD, lr=0.01)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    import lightning as L

    class Record(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            order.append(list(trainer.train_dataloader.sampler))

    handler.add_callback(Record())
    handler.train(2, progress_bar=False)
    assert sampler.epoch == 1
    assert sorted(order[0]) == sorted(order[1]) == list(range(40)) and order[0] != order[1]


def test_standard_is_the_default_and_unchanged():
    handler = NNHandler(TinyNet)
    data = TensorDataset(torch.randn(10, 8), torch.zeros(10, dtype=torch.long))
    handler.set_train_loader(data, batch_size=4, shuffle=True)
    assert isinstance(handler.train_loader.sampler, RandomSampler)
    handler.set_val_loader(data, dataloader_type="standard", batch_size=4)
    assert handler.val_loader.batch_size == 4


def test_bad_dataloader_type_input():
    from nn_handler.utils.enums import DataLoaderType

    handler = NNHandler(TinyNet)
    data = TensorDataset(torch.randn(10, 8), torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match="Unknown DataLoaderType 'cached'.*'rank_cached'"):
        handler.set_train_loader(data, dataloader_type="cached", batch_size=4)
    with pytest.raises(TypeError, match="builds its own DataLoader"):
        handler.set_train_loader(DataLoader(data), dataloader_type=DataLoaderType.RANK_CACHED)
    with pytest.raises(TypeError, match="not marked as sampling a rank-local dataset"):
        handler.set_val_loader(
            data, dataloader_type=DataLoaderType.RANK_CACHED, sampler=RandomSampler(data)
        )
    assert handler.val_loader is None  # nothing was set by the failed calls


@pytest.mark.slow
def test_rank_cached_under_torchrun_is_not_split_again_and_uneven_shards_are_padded(tmp_path):
    from test_origdoc_rank_cached_h5 import run_h5_job

    r0, r1 = run_h5_job(tmp_path, "enums")
    assert (r0["rank"], r1["rank"]) == (0, 1)
    for rep in (r0, r1):
        assert rep["sampler"] == "RankLocalSampler" and rep["sampler_epochs"] == [0, 1]
        for seen in rep["epochs"]:
            # 7 rows on rank 0, 6 on rank 1 padded to 7 (batch_size 2: 4 steps on both ranks,
            # which DDP needs; without padding the job would hang).
            assert len(seen) == 7 and set(seen) == set(rep["shard"])
        assert rep["epochs"][0] != rep["epochs"][1]
    assert set(r0["shard"]).isdisjoint(r1["shard"])
    assert r0["train_losses"] == r1["train_losses"] and len(r0["train_losses"]) == 2
