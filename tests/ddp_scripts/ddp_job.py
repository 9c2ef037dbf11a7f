"""A 2-process DDP job launched by the tests (torchrun or SLURM's srun); one JSON report per rank.

Usage: ddp_job.py OUT_DIR MODE, MODE one of
  full   training parity, sampler checks, predict, checkpoint, DDP utilities;
  train  training only, with the launcher probe (the SLURM tests);
  crash  rank 1 raises in its third training batch while rank 0 waits for its gradients;
  accumulate  train(3) with accumulation, clipping and an EMA (steps_per_execution="auto").
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lightning as L  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from common import (  # noqa: E402
    ACCUMULATE,
    PER_RANK_BATCH,
    build,
    datasets,
    history,
    run_training,
)
from torch.utils.data import DataLoader, DistributedSampler  # noqa: E402

from nn_handler.utils import (  # noqa: E402
    aggregate_loss,
    aggregate_metrics,
    broadcast_data,
    broadcast_if_ddp,
    initialize_ddp,
    on_rank,
)


class Probe(L.Callback):
    """Records what Lightning saw: cluster environment, world size, samplers, sampler epochs."""

    def __init__(self, handler_sampler=None):
        self.seen: dict = {"sampler_epochs": []}
        self.handler_sampler = handler_sampler

    def on_train_epoch_start(self, trainer, pl_module):
        sampler = trainer.train_dataloader.sampler
        self.seen.update(
            cluster=type(trainer.strategy.cluster_environment).__name__,
            strategy=type(trainer.strategy).__name__,
            world=trainer.world_size,
            backend=trainer.strategy.process_group_backend,
            train_sampler=type(sampler).__name__,
            train_shuffle=getattr(sampler, "shuffle", None),
        )
        self.seen["sampler_epochs"].append(getattr(sampler, "epoch", None))
        # Lightning fits on the handler's own loader (no second sampler added).
        self.seen["fits_on_handler_loader"] = sampler is self.handler_sampler
        self.seen["pg_timeout_s"] = trainer.strategy._timeout.total_seconds()

    def on_validation_epoch_start(self, trainer, pl_module):
        loaders = trainer.val_dataloaders
        self.seen["val_sampler"] = type(loaders.sampler).__name__
        self.seen["val_samples_here"] = len(loaders.sampler)


class ModuleKind(L.Callback):
    """Which module class trained, and how many batches per Lightning step."""

    def on_train_start(self, trainer, pl_module):
        self.seen = {
            "class": type(pl_module).__name__,
            "batches": getattr(pl_module, "steps_per_execution", 1),
            "automatic": pl_module.automatic_optimization,
        }


def _flat(t: torch.Tensor) -> list:
    return t.detach().reshape(-1).tolist()


def construction(handler) -> dict:
    return {
        "rank": handler._rank,
        "local_rank": handler._local_rank,
        "world_size": handler._world_size,
        "distributed": handler._distributed,
        "source": handler.runtime.dist.source,
        "device": str(handler.device),
        "pg_ready_at_construction": dist.is_initialized(),
        "logger_is_none": handler.logger is None,
    }


def loaders_as_users_see_them(handler) -> dict:
    """The handler's loaders right after set_*_loader: already this rank's shards."""
    train, val = handler.train_loader.sampler, handler.val_loader.sampler
    return {
        "train_sampler_is_distributed": isinstance(train, DistributedSampler),
        "train_sampler": type(train).__name__,
        "train_shuffle": train.shuffle,
        "train_rank": train.rank,
        "train_indices": list(train),
        "val_sampler_is_distributed": isinstance(val, DistributedSampler),
        "val_indices": list(val),
    }


def checkpoint_once(handler, out: Path) -> dict:
    """Save through handler.save (rank 0 writes); count torch.save calls on this rank."""
    calls = []
    real_save = torch.save

    def counting_save(*args, **kwargs):
        calls.append(1)
        return real_save(*args, **kwargs)

    torch.save = counting_save
    try:
        try:
            from nn_handler.checkpoint import save_handler  # noqa: F401

            handler.save(str(out / "model.pth"))
            how = "handler.save"
        except ImportError:
            on_rank(0)(lambda: torch.save(handler.module.state_dict(), out / "model.pth"))()
            how = "on_rank"
    finally:
        torch.save = real_save
    return {"saves_here": len(calls), "how": how, "exists": (out / "model.pth").exists()}


def utilities(rank: int) -> dict:
    # The process group exists (initialize_ddp made it before the handler joined it): None.
    report: dict = {"initialize_ddp_again": initialize_ddp()}

    @on_rank(1)
    def fails_on_one():
        raise ValueError("deliberate failure on rank one")

    try:
        fails_on_one()
        report["on_rank_error"] = None
    except RuntimeError as err:
        report["on_rank_error"] = str(err)

    @on_rank(0, barrier=True)
    def answer():
        return 42

    report["on_rank_result"] = answer()
    report["aggregate_loss"] = aggregate_loss(torch.tensor(float(rank + 1)), 2, "cpu")
    report["aggregate_metrics"] = aggregate_metrics({"a": rank * 2.0, "b": 1.0})
    report["broadcast"] = broadcast_data({"from": rank, "t": torch.arange(3) + rank})
    report["broadcast"]["t"] = report["broadcast"]["t"].tolist()
    report["broadcast_if_ddp"] = broadcast_if_ddp(rank + 10, src=1)
    return report


def main() -> None:
    out, mode = Path(sys.argv[1]), sys.argv[2]
    out.mkdir(parents=True, exist_ok=True)
    first = None
    if mode == "full":
        # The original's manual set-up: initialize_ddp() first, then a handler in that group.
        first = {"pg_before": dist.is_initialized(), "tuple": list(initialize_ddp())[:4]}
    handler = build(use_distributed=True, batch_size=PER_RANK_BATCH)
    rank = handler._rank
    report = construction(handler)
    report["initialize_ddp_first"] = first
    report["loaders"] = loaders_as_users_see_them(handler)
    if mode == "crash":
        batches = []

        def crashing_loss(outputs, targets):
            batches.append(1)
            if rank == 1 and len(batches) == 3:  # mid-epoch, while rank 0 waits on gradients
                raise ZeroDivisionError("rank 1 crashes on purpose")
            return torch.nn.functional.cross_entropy(outputs, targets)

        handler.set_loss_fn(crashing_loss)
        handler.train(3, progress_bar=False)
        return
    if mode == "accumulate":
        which = ModuleKind()
        handler.add_callback(which)
        handler.train(3, progress_bar=False, **ACCUMULATE)
        report["module"] = which.seen
        report["history"] = history(handler)
        report["global_step"] = handler.run_state.global_step
        report["weights"] = {k: _flat(v) for k, v in handler.module.state_dict().items()}
        report["ema"] = {k: _flat(v) for k, v in handler.ema.module.state_dict().items()}
        (out / f"rank{rank}.json").write_text(json.dumps(report))
        dist.barrier()
        return
    probe = Probe(handler.train_loader.sampler)
    run_training(handler, [probe])
    report["probe"] = probe.seen
    report["history"] = history(handler)
    report["weights"] = {k: _flat(v) for k, v in handler.module.state_dict().items()}
    if mode == "full":
        _, val = datasets()
        preds = handler.predict(DataLoader(val, batch_size=5))
        report["predict"] = None if preds is None else [p.tolist() for p in preds]
        report["checkpoint"] = checkpoint_once(handler, out)
        report["utilities"] = utilities(rank)
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    dist.barrier()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
