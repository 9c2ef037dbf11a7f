"""DDP helpers and reductions at world size 2, fast: two spawned CPU processes with a gloo group.

At world size 1 a sum, a mean and a max are the same number, so a reduction with the wrong
operation passes every one-process test. Here each rank contributes a different value and the
results are compared with the sum, the mean and the max, which all differ. The processes are
started once for the whole module (about two interpreter start-ups); every check runs in them and
reports its result to the test process, which asserts.
"""

from __future__ import annotations

import os
import socket
import time
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, TensorDataset

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fails():
    raise KeyError("only rank 1 has it")


class _Counting:
    """Counts ``torch.distributed``'s barrier, all-reduce and broadcast calls while active."""

    NAMES = ("all_reduce", "barrier", "broadcast")

    def __init__(self, dist) -> None:
        self.dist, self.calls, self.saved = dist, {}, {}

    def __enter__(self) -> dict:
        for name in self.NAMES:
            original = self.saved[name] = getattr(self.dist, name)

            def counted(*args, _name=name, _original=original, **kwargs):
                self.calls[_name] = self.calls.get(_name, 0) + 1
                return _original(*args, **kwargs)

            setattr(self.dist, name, counted)
        return self.calls

    def __exit__(self, *exc) -> None:
        for name, original in self.saved.items():
            setattr(self.dist, name, original)


def _checks(rank: int) -> dict:
    """Every collective under test, run on ``rank``; returns what this rank saw."""
    import torch.distributed as dist
    from lightning.pytorch.strategies import DDPStrategy
    from nn_handler.adapters.steps.collectives import any_rank
    from nn_handler.adapters.steps.module import HandlerModule
    from torch import nn

    from nn_handler import NNHandler
    from nn_handler import utils as ddp_utils

    out: dict = {}
    # The handler finds the torchrun-style variables and creates the process group itself.
    handler = NNHandler(nn.Linear, in_features=2, out_features=1)
    out["handler"] = (handler._distributed, handler._rank, handler._world_size)
    out["group"] = (dist.get_rank(), dist.get_world_size())

    # Rank 0 holds 1.0, rank 1 holds 3.0: mean 2, sum 4, max 3.
    out["loss"] = ddp_utils.aggregate_loss(torch.tensor(1.0 + 2 * rank))
    out["metrics"] = ddp_utils.aggregate_metrics({"acc": 0.5 + 0.25 * rank, "n": 10.0 * rank})

    out["on_rank_1"] = ddp_utils.on_rank(1)(lambda: f"ran on rank {rank}")()
    try:
        ddp_utils.on_rank(1, barrier=True)(_fails)()
        out["failure"] = None
    except RuntimeError as err:
        out["failure"] = str(err)
    out["broadcast"] = ddp_utils.broadcast_data({"from": rank, "t": torch.arange(2) + rank}, src=1)
    out["broadcast_if_ddp"] = ddp_utils.broadcast_if_ddp(f"rank {rank}")

    # The epoch values of train(): rank 0 saw 3 samples with loss 1 and two batches with metric
    # values 0.2 and 0.4; rank 1 saw 1 sample with loss 5 and one batch with metric value 0.9.
    # Sample-weighted loss (3 * 1 + 5) / 4 = 2 (mean of the ranks' means 3, max 5); batch-averaged
    # metric (0.2 + 0.4 + 0.9) / 3 = 0.5 (mean of the ranks' means 0.6, max 0.9).
    module = HandlerModule(model=handler.module, model_type="regression", loss=None)
    module.trainer = SimpleNamespace(world_size=WORLD, strategy=DDPStrategy())
    module.metric_names = ["m"]
    if rank == 0:
        module.train_stats.add_loss(torch.tensor(1.0), 3)
        module.train_stats.add_metric("m", torch.tensor(0.2))
        module.train_stats.add_metric("m", torch.tensor(0.4))
    else:
        module.train_stats.add_loss(torch.tensor(5.0), 1)
        module.train_stats.add_metric("m", 0.9)
    with _Counting(dist) as calls:
        out["epoch_values"] = module.reduce_stage("train")
    out["epoch_values_calls"] = calls
    # The stop decision: rank 1 asks, both stop; one all-reduce (no barrier before it either).
    strategy = DDPStrategy(parallel_devices=[torch.device("cpu")] * WORLD)
    with _Counting(dist) as calls:
        out["any_rank"] = any_rank(strategy, rank == 1)
    out["any_rank_calls"] = calls

    # predict: each rank runs its strided share; rank 0 gets every output in dataset order.
    x = torch.arange(10, dtype=torch.float32).reshape(5, 2)
    with torch.no_grad():
        handler.module.weight.fill_(1.0)
        handler.module.bias.fill_(0.0)
    preds = handler.predict(DataLoader(TensorDataset(x), batch_size=2))
    out["predict"] = None if preds is None else [p.tolist() for p in preds]
    dist.barrier()
    return out


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_WORLD_SIZE=str(WORLD),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    try:
        result = _checks(rank)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of the two ranks saw, by rank."""
    out_dir = tmp_path_factory.mktemp("two_ranks")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS"):
        os.environ.pop(key, None)
    context = mp.start_processes(
        _worker, args=(_free_port(), str(out_dir)), nprocs=WORLD, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + 180
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two-rank processes did not finish in 180 s")
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def test_the_handler_joins_a_two_process_group(ranks):
    assert [r["handler"] for r in ranks] == [(True, 0, 2), (True, 1, 2)]
    assert [r["group"] for r in ranks] == [(0, 2), (1, 2)]


def test_aggregate_loss_and_metrics_are_means_over_ranks(ranks):
    for r in ranks:
        assert r["loss"] == pytest.approx(2.0)  # sum 4.0, max 3.0
        assert r["metrics"] == pytest.approx({"acc": 0.625, "n": 5.0})  # sums 1.25 and 10


def test_on_rank_runs_on_its_rank_and_a_failure_reaches_every_rank(ranks):
    assert [r["on_rank_1"] for r in ranks] == [None, "ran on rank 1"]
    for r in ranks:
        assert r["failure"] == "_fails failed on rank 1: KeyError: 'only rank 1 has it'"


def test_broadcast_sends_the_source_ranks_data(ranks):
    for r in ranks:
        assert r["broadcast"]["from"] == 1 and r["broadcast"]["t"].tolist() == [1, 2]
        assert r["broadcast_if_ddp"] == "rank 0"


def test_epoch_values_are_sample_weighted_over_ranks(ranks):
    for r in ranks:
        assert r["epoch_values"] == pytest.approx({"loss": 2.0, "m": 0.5})


def test_the_epoch_reductions_are_one_all_reduce_each(ranks):
    """Lightning's strategy.reduce would add a barrier before each (a second collective)."""
    for r in ranks:
        assert r["epoch_values_calls"] == {"all_reduce": 1}
        assert r["any_rank"] is True  # rank 1 asked to stop: every rank stops
        assert r["any_rank_calls"] == {"all_reduce": 1}


def test_predict_gathers_every_rank_in_dataset_order_on_rank_zero(ranks):
    assert ranks[0]["predict"] == [[[1.0], [5.0]], [[9.0], [13.0]], [[17.0]]]
    assert ranks[1]["predict"] is None
