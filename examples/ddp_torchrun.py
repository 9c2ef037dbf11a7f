"""Data-parallel training of a digits classifier on every process of a torchrun or SLURM job.

Run:
    torchrun --standalone --nproc_per_node=2 examples/ddp_torchrun.py      # one machine
    sbatch examples/slurm_job.sh                                             # SLURM
    python examples/ddp_torchrun.py                                          # one process

NNHandler detects the launcher from its environment variables; nothing in the script changes.
Each process reads its own shard of the data with ``--batch-size`` samples per step, so one
optimizer step sees ``batch_size x world_size`` samples; the learning rate is scaled to match.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
from digits import DigitsNet, accuracy, digits_datasets
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nn_handler import NNHandler, on_rank
from nn_handler.utils import aggregate_metrics


def digits() -> tuple[TensorDataset, TensorDataset]:
    return digits_datasets(seed=0)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="samples per process and step")
    parser.add_argument("--base-lr", type=float, default=1e-3, help="learning rate for 1 process")
    parser.add_argument("--checkpoint", default="ddp_digits.pth")
    parser.add_argument("--report", default=None, help="write a JSON summary here (rank 0)")
    parser.add_argument("--no-progress-bar", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    # use_distributed=None (the default) detects torchrun/srun; the process group exists now.
    handler = NNHandler(DigitsNet, device=device, hidden=64, dropout=0.0)
    world = handler._world_size
    train, val = digits()
    handler.set_train_loader(train, batch_size=args.batch_size, shuffle=True)
    handler.set_val_loader(val, batch_size=256)
    # The global batch grows with the number of processes: scale Adam's rate by sqrt(world).
    handler.set_optimizer(torch.optim.Adam, lr=args.base_lr * world**0.5)
    handler.set_loss_fn(nn.functional.cross_entropy)
    handler.add_metric("accuracy", accuracy)
    handler.train(args.epochs, seed=0, progress_bar=not args.no_progress_bar)  # on rank 0

    handler.save(args.checkpoint)  # rank 0 writes, the other ranks wait for it
    predictions = handler.predict(DataLoader(val, batch_size=128))  # all of them, on rank 0
    # Every rank measured the same thing; averaging shows the helpers (values are identical).
    final = aggregate_metrics({"val_loss": handler.val_losses[-1]})
    summary = {
        "processes": world,
        "launcher": handler.runtime.dist.source,
        "epochs": len(handler.train_losses),
        "val_loss": final["val_loss"],
        "val_accuracy": handler.val_metrics_history["accuracy"][-1],
    }

    @on_rank(0)
    def report() -> None:
        n = sum(len(p) for p in predictions)
        print(
            f"{world} process(es) via {summary['launcher'] or 'no launcher'}: "
            f"val_loss {summary['val_loss']:.4f}, val_accuracy {summary['val_accuracy']:.3f}, "
            f"{n} validation predictions gathered"
        )
        written = [args.checkpoint]
        if args.report:
            with open(args.report, "w") as f:
                json.dump(summary, f)
            written.append(args.report)
        print("wrote " + ", ".join(os.path.abspath(p) for p in written))

    report()
    return summary


if __name__ == "__main__":
    main()
