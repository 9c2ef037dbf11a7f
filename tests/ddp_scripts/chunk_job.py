"""Chunked steps and gradient accumulation under DDP, against a hand-written DDP loop.

Launched by tests/test_ddp_chunked.py on 2 processes (torchrun, gloo). Usage:
``chunk_job.py OUT_DIR``. Each rank writes ``rank{R}.pt``: for every (batches per step,
accumulation) case the final weights of ``NNHandler.train`` and of the hand-written loop, the
number of gradient all-reduces each made (a counting DDP communication hook on the wrapper that
reduces) and the optimizer steps; and a resume from an auto-save written at epoch 1 of 3.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402,F401  (puts tests/ on the path)
import lightning as L  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from models import TinyNet  # noqa: E402
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset  # noqa: E402

from nn_handler import NNHandler  # noqa: E402

# 80 samples a rank in batches of 8: 10 batches an epoch; windows of 3 end at batches 3, 6, 9
# and the partial window at 10, so 4 optimizer steps an epoch with accumulation.
N, BATCH, EPOCHS, SEED, SHUFFLE_SEED = 160, 8, 3, 123, 0
#: (steps_per_execution, gradient_accumulation_steps); "auto" must pick 16 here.
CASES = (("auto", 1), ("auto", 3), (4, 3), (1, 1), (1, 3))
#: The same, with a callback that hooks into backward: Lightning's backward and step instead of
#: the direct ones.
HOOKED_CASE = (4, 3)


def dataset() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 8, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long())


def counting_hook(state: dict, bucket):
    """DDP's default all-reduce (divide by the world size, sum), counted per bucket."""
    state["calls"] += 1
    state["buckets"].add(bucket.index())
    return allreduce_hook(None, bucket)


def new_counter() -> dict:
    return {"calls": 0, "buckets": set()}


class CountReductions(L.Callback):
    """Registers the counting hook on the wrapper that reduces (the strategy's DDP model) and
    records how many batches one Lightning step runs."""

    def __init__(self):
        self.state = new_counter()
        self.batches = None

    def on_train_start(self, trainer, pl_module):
        trainer.strategy.model.register_comm_hook(self.state, counting_hook)
        self.batches = getattr(pl_module, "steps_per_execution", 1)


class CountBackwards(CountReductions):
    """Also counts Lightning's ``on_after_backward`` calls (only the Lightning way makes them)."""

    def __init__(self):
        super().__init__()
        self.backwards = 0

    def on_after_backward(self, trainer, pl_module):
        self.backwards += 1


def handler(data: TensorDataset) -> NNHandler:
    torch.manual_seed(SEED)
    h = NNHandler(TinyNet, hidden=12)
    h.set_train_loader(data, batch_size=BATCH, shuffle=True)
    h.set_val_loader(data, batch_size=BATCH)
    h.set_optimizer(torch.optim.SGD, lr=0.2, momentum=0.5)
    h.set_loss_fn(torch.nn.functional.cross_entropy)
    return h


def weights(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def hand_written(data: TensorDataset, accumulate: int, rank: int, world: int) -> dict:
    """What a careful user writes: DistributedSampler, no_sync before a window's last batch."""
    torch.manual_seed(SEED)
    model = TinyNet(hidden=12)
    start = weights(model)
    ddp = DistributedDataParallel(model)
    counter = new_counter()
    ddp.register_comm_hook(counter, counting_hook)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.2, momentum=0.5)
    sampler = DistributedSampler(
        data, num_replicas=world, rank=rank, shuffle=True, seed=SHUFFLE_SEED
    )
    loader = DataLoader(data, batch_size=BATCH, sampler=sampler)
    steps = 0
    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        n = len(loader)
        for i, (x, y) in enumerate(loader):
            if i % accumulate == 0:
                opt.zero_grad()
            last = (i + 1) % accumulate == 0 or i + 1 == n
            with contextlib.nullcontext() if last else ddp.no_sync():
                loss = torch.nn.functional.cross_entropy(ddp(x), y)
                if accumulate != 1:
                    loss = loss / accumulate
                loss.backward()
            if last:
                opt.step()
                steps += 1
    return {
        "start": start,
        "weights": weights(model),
        "reductions": counter["calls"],
        "buckets": len(counter["buckets"]),
        "steps": steps,
    }


def run_case(data, batches, accumulate, save_dir=None, hooked=False) -> dict:
    h = handler(data)
    start = weights(h.module)
    count = CountBackwards() if hooked else CountReductions()
    h.add_callback(count)
    if save_dir is not None:
        h.auto_save(1, save_path=str(save_dir), name="e{epoch:02d}")
    h.train(
        EPOCHS,
        progress_bar=False,
        steps_per_execution=batches,
        gradient_accumulation_steps=accumulate,
    )
    return {
        "start": start,
        "weights": weights(h.module),
        "reductions": count.state["calls"],
        "buckets": len(count.state["buckets"]),
        "steps": h.run_state.global_step,
        "batches": count.batches,
        "backwards": getattr(count, "backwards", None),
        "train_losses": list(h.train_losses),
        "val_losses": list(h.val_losses),
    }


def resume(data, path: Path) -> dict:
    """Load the auto-save written after epoch 1 and train the two epochs left."""
    torch.manual_seed(999)  # load restores the generators: what ran before is irrelevant
    h = NNHandler.load(str(path))
    h.set_train_loader(data, batch_size=BATCH, shuffle=True)
    h.set_val_loader(data, batch_size=BATCH)
    h.auto_save(None)
    count = CountReductions()
    h.add_callback(count)
    h.train(EPOCHS - 1, progress_bar=False, gradient_accumulation_steps=3)
    return {
        "weights": weights(h.module),
        "steps": h.run_state.global_step,
        "batches": count.batches,
        "train_losses": list(h.train_losses),
        "val_losses": list(h.val_losses),
    }


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    data = dataset()
    report: dict = {"handler": {}, "loop": {}}
    saves = out / "saves"
    for batches, accumulate in CASES:
        save_dir = saves if (batches, accumulate) == ("auto", 3) else None
        report["handler"][(batches, accumulate)] = run_case(data, batches, accumulate, save_dir)
    report["hooked"] = run_case(data, *HOOKED_CASE, hooked=True)
    rank, world = dist.get_rank(), dist.get_world_size()
    for accumulate in sorted({a for _, a in CASES}):
        report["loop"][accumulate] = hand_written(data, accumulate, rank, world)
    dist.barrier()
    report["saved"] = sorted(p.name for p in saves.iterdir())
    report["resumed"] = resume(data, saves / "e01.pth")
    torch.save(report, out / f"rank{rank}.pt")
    dist.barrier()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
