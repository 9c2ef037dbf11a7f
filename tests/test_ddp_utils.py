"""DDP helpers, per-rank loaders and the ordered predict gather, without launching processes."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSamplerWrapper
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset, WeightedRandomSampler

import nn_handler
import nn_handler.utils as utils
from nn_handler._env.dist_env import DistEnv
from nn_handler._env.dist_loaders import shard_train_loader, shard_val_loader
from nn_handler.utils import _ordered_gather as og


def _dist(rank: int, world: int = 2) -> DistEnv:
    return DistEnv(True, rank, rank, world, "torchrun", world, 1, 0)


def _data(n: int) -> TensorDataset:
    return TensorDataset(torch.arange(n, dtype=torch.float32).unsqueeze(1), torch.arange(n))


# ----------------------------------------------------------------------------- exports
def test_public_names():
    assert set(utils.__all__) == {
        "initialize_ddp",
        "on_rank",
        "parallelize_on_gpus",
        "aggregate_loss",
        "aggregate_metrics",
        "broadcast_data",
        "broadcast_if_ddp",
        # the rest of the original's nn_handler.utils (tests/test_original_utils.py)
        "parallel_on_all_devices",
        "import_with_fallback",
        "ModelType",
        "LoggingMode",
        "DataLoaderType",
        "Scaler",
    }
    for name in ("initialize_ddp", "on_rank", "parallelize_on_gpus"):
        assert getattr(nn_handler, name) is getattr(utils, name)
        assert name in nn_handler.__all__


# ------------------------------------------------------------------------------ loaders
@pytest.mark.parametrize("shuffle", [True, False])
def test_train_shards_honour_shuffle_and_keep_loader_options(shuffle):
    loader = DataLoader(_data(10), batch_size=3, shuffle=shuffle, drop_last=True)
    sharded, sampler = shard_train_loader(loader, _dist(1), seed=7)
    assert sampler is sharded.sampler and type(sampler) is DistributedSampler
    assert (sampler.shuffle, sampler.seed, sampler.num_replicas, sampler.rank) == (shuffle, 7, 2, 1)
    assert (sharded.batch_size, sharded.drop_last) == (3, True)
    if not shuffle:
        assert list(sampler) == [1, 3, 5, 7, 9]


def test_train_loader_untouched_in_one_process_or_already_sharded():
    loader = DataLoader(_data(10), batch_size=3)
    assert shard_train_loader(loader, DistEnv(), seed=0) == (loader, None)
    own = DataLoader(_data(10), sampler=DistributedSampler(_data(10), num_replicas=2, rank=0))
    assert shard_train_loader(own, _dist(0), seed=0) == (own, None)  # the user's own sharding


def test_train_loader_with_a_custom_sampler_is_wrapped_as_lightning_would():
    weighted = DataLoader(_data(10), sampler=WeightedRandomSampler([1.0] * 10, 10))
    sharded, sampler = shard_train_loader(weighted, _dist(1), seed=3)
    assert sampler is sharded.sampler
    assert isinstance(sampler, DistributedSampler) and type(sampler).__name__ == (
        "DistributedSamplerWrapper"
    )
    assert (sampler.shuffle, sampler.seed, sampler.num_replicas, sampler.rank) == (True, 3, 2, 1)
    assert len(list(sampler)) == 5 and all(0 <= i < 10 for i in sampler)


def test_validation_shards_cover_every_sample_exactly_once():
    loader = DataLoader(_data(37), batch_size=8, shuffle=True)  # val shuffling is dropped
    seen = []
    for rank in range(2):
        sharded = shard_val_loader(loader, _dist(rank))
        assert sharded.batch_size == 8
        seen.append([int(i) for _, y in sharded for i in y])
    assert seen[0] == list(range(0, 37, 2)) and seen[1] == list(range(1, 37, 2))
    assert sorted(seen[0] + seen[1]) == list(range(37))


def test_validation_with_a_custom_sampler_is_wrapped_without_padding():
    sampler = list(reversed(range(9)))
    loader = DataLoader(_data(9), batch_size=4, sampler=sampler)
    sharded = shard_val_loader(loader, _dist(0))
    assert isinstance(sharded.sampler, UnrepeatedDistributedSamplerWrapper)
    assert list(sharded.sampler) == [8, 6, 4, 2, 0]


def test_validation_smaller_than_the_world_falls_back_with_a_warning():
    loader = DataLoader(_data(3), batch_size=2)
    with pytest.warns(RuntimeWarning, match="3 samples for 4 processes"):
        sharded = shard_val_loader(loader, _dist(3, world=4))
    assert type(sharded.sampler) is DistributedSampler and len(sharded.sampler) == 1


# ------------------------------------------------------------------------ predict gather
def _simulate_predict(monkeypatch, loader, world, model):
    """Run every rank's share through ``model``, then rank 0's gather with those payloads."""
    payloads = []

    def fake_gather(obj, box, dst=0):
        payloads.append(obj)
        if box is not None:
            box[:] = payloads_by_rank

    sizes = og.batch_sizes(loader, len(loader.dataset))
    locals_ = []
    for rank in range(world):
        shard = og.shard_for_predict(loader, world, rank)
        locals_.append([model(x) for x, _ in shard])
    monkeypatch.setattr(og.dist, "gather_object", fake_gather)
    payloads_by_rank = []
    for rank in range(1, world):  # non-zero ranks send first and get None back
        assert og.gather_predictions(locals_[rank], sizes, world, rank) is None
    payloads_by_rank = [None] + payloads  # rank 0's own payload is filled in below

    def fake_gather_rank0(obj, box, dst=0):
        payloads_by_rank[0] = obj
        box[:] = payloads_by_rank

    monkeypatch.setattr(og.dist, "gather_object", fake_gather_rank0)
    return og.gather_predictions(locals_[0], sizes, world, 0)


@pytest.mark.parametrize("world", [2, 3])
def test_gather_restores_dataset_order_and_batches(monkeypatch, world):
    loader = DataLoader(_data(11), batch_size=4)
    out = _simulate_predict(monkeypatch, loader, world, lambda x: (x * 10, {"id": x[:, 0]}))
    assert [len(b[0]) for b in out] == [4, 4, 3]
    assert torch.cat([b[0] for b in out]).reshape(-1).tolist() == [10.0 * i for i in range(11)]
    assert torch.cat([b[1]["id"] for b in out]).tolist() == list(range(11))


def test_gather_honours_drop_last(monkeypatch):
    loader = DataLoader(_data(11), batch_size=4, drop_last=True)
    out = _simulate_predict(monkeypatch, loader, 2, lambda x: x)
    assert torch.cat(out).reshape(-1).tolist() == list(range(8))


def test_gather_of_non_tensor_outputs_warns_and_keeps_rank_order(monkeypatch):
    loader = DataLoader(_data(4), batch_size=2)
    with pytest.warns(RuntimeWarning, match="rank by rank"):
        out = _simulate_predict(monkeypatch, loader, 2, lambda x: f"batch of {len(x)}")
    assert out == ["batch of 2", "batch of 2"]


# ---------------------------------------------------------------- helpers, one process
def test_helpers_in_a_single_process():
    assert utils.initialize_ddp() == (False, 0, 0, 1, torch.device("cpu"))
    calls = []
    assert utils.on_rank(0)(lambda: calls.append(0) or "ran")() == "ran"
    assert utils.on_rank([1, 2])(lambda: calls.append(1))() is None
    assert calls == [0]
    assert utils.aggregate_loss(torch.tensor(2.5), 1, "cpu") == 2.5
    assert utils.aggregate_metrics({"a": 1, "b": torch.tensor(3.0)}) == {"a": 1.0, "b": 3.0}
    assert utils.broadcast_if_ddp({"x": 1}) == {"x": 1}
    with pytest.raises(RuntimeError, match="broadcast_if_ddp"):
        utils.broadcast_data(1)


def test_helpers_reject_bad_arguments():
    with pytest.raises(ValueError, match="non-negative int ranks"):
        utils.on_rank(-1)
    with pytest.raises(TypeError, match="a rank"):
        utils.on_rank("zero")
    with pytest.raises(TypeError, match="must be a number"):
        utils.aggregate_metrics({"a": "high"})
    with pytest.raises(ValueError, match="scalar"):
        utils.aggregate_loss(torch.ones(3))
    with pytest.raises(ValueError, match="num_gpus"):
        utils.parallelize_on_gpus(0)
    with pytest.raises(TypeError, match="timedelta"):
        utils.initialize_ddp(timeout="soon")


@pytest.fixture
def one_rank_group():
    """A real (gloo, world size 1) process group, destroyed afterwards."""
    dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())
    yield
    dist.destroy_process_group()


def test_helpers_through_a_real_process_group(one_rank_group):
    @utils.on_rank(0, barrier=True)
    def fails():
        raise KeyError("missing")

    with pytest.raises(RuntimeError, match="failed on rank 0: KeyError") as info:
        fails()
    assert isinstance(info.value.__cause__, KeyError)
    assert utils.on_rank(0)(lambda: 5)() == 5
    assert utils.aggregate_metrics({"a": 3.0, "b": 1.0}) == {"a": 3.0, "b": 1.0}
    assert utils.aggregate_loss(4.0, world_size=2) == 2.0  # the given world size divides
    data = utils.broadcast_data({"t": torch.arange(2)})
    assert data["t"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="src must be a rank"):
        utils.broadcast_data(1, src=1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only fall-back")
def test_parallelize_on_gpus_runs_once_on_the_cpu():
    @utils.parallelize_on_gpus()
    def work(x, device):
        return torch.full((2,), x, device=device)

    out = work(3.0)
    assert len(out) == 1 and out[0].device.type == "cpu" and out[0].tolist() == [3.0, 3.0]
    assert utils.parallelize_on_gpus(pass_device=False)(lambda: "no device")() == ["no device"]
    with pytest.warns(RuntimeWarning, match="runs once on the CPU"):
        assert utils.parallelize_on_gpus(num_gpus=2)(lambda device: device.type)() == ["cpu"]


@utils.parallelize_on_gpus()
def _filled(x, device):
    return torch.full((2,), x, device=device)


def test_a_gpu_worker_runs_the_decorated_function_itself_not_its_wrapper():
    from nn_handler.utils import ddp

    # What a worker process does with the reference it is sent (module, qualname): the name is
    # the wrapper, which would fan out again; the worker must run the function under it.
    ref = ddp._reference(_filled)
    assert ref == (__name__, "_filled")
    out = ddp._device_worker(ref, (3.0,), {}, "cpu", True)
    assert isinstance(out, torch.Tensor) and out.tolist() == [3.0, 3.0]  # the wrapper gives a list


def test_the_ddp_example_runs_in_one_process(tmp_path, capsys, monkeypatch):
    import importlib.util
    import json
    import warnings
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "ddp_torchrun.py"
    monkeypatch.syspath_prepend(str(path.parent))  # as `python examples/ddp_torchrun.py` does
    spec = importlib.util.spec_from_file_location("ddp_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    report = tmp_path / "report.json"
    with warnings.catch_warnings():
        # The example's classes live in a module loaded by path: save() says so; not our subject.
        warnings.simplefilter("ignore", UserWarning)
        summary = example.main(
            ["--epochs", "1", "--checkpoint", str(tmp_path / "c.pth"), "--report", str(report)]
        )
    assert summary["processes"] == 1 and summary["launcher"] is None and summary["epochs"] == 1
    assert json.loads(report.read_text()) == summary
    assert (tmp_path / "c.pth").stat().st_size > 0
    out = capsys.readouterr().out
    assert "360 validation predictions" in out
    assert out.strip().splitlines()[-1] == f"wrote {tmp_path / 'c.pth'}, {report}"
