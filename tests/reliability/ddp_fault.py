"""A 2-process DDP training (gloo, CPU) in which rank 1 fails mid-epoch; run under torchrun.

Usage: ``python -m torch.distributed.run --standalone --nproc_per_node=2 ddp_fault.py OUT MODE``
with MODE one of ``raise`` (rank 1's loss raises), ``kill`` (rank 1 SIGKILLs itself) or ``hang``
(rank 1 sleeps: only the collective timeout, $NN_HANDLER_DDP_TIMEOUT, ends the job). The fault
hits batch FAULT_BATCH of epoch FAULT_EPOCH (0-based) while rank 0 waits in the gradient
all-reduce; the AutoSaver (every epoch, overwrite) writes into OUT/ckpt. Rank 1 writes
OUT/fault.json (the wall-clock time of the fault) just before failing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from models import TinyNet  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from nn_handler import NNHandler  # noqa: E402

EPOCHS, FAULT_EPOCH, FAULT_BATCH, PER_RANK_BATCH, SAMPLES = 6, 2, 1, 8, 64
STEPS = SAMPLES // (2 * PER_RANK_BATCH)


def dataset() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(SAMPLES, 8, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long())


def main(out: Path, mode: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    handler = NNHandler(TinyNet)
    rank = handler._rank
    calls = []

    def faulty_loss(outputs, targets):
        calls.append(1)
        if rank == 1 and len(calls) == FAULT_EPOCH * STEPS + FAULT_BATCH + 1:
            (out / "fault.json").write_text(json.dumps({"time": time.time(), "mode": mode}))
            if mode == "raise":
                raise RuntimeError("injected fault on rank 1")
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(3600)
        return torch.nn.functional.cross_entropy(outputs, targets)

    handler.set_optimizer(torch.optim.SGD, lr=0.1, momentum=0.9)
    handler.set_loss_fn(faulty_loss)
    handler.set_train_loader(dataset(), batch_size=PER_RANK_BATCH, shuffle=True)
    handler.auto_save(1, save_path=str(out / "ckpt"), overwrite=True)
    handler.train(EPOCHS, seed=0, progress_bar=False)
    (out / f"finished_rank{rank}").write_text("this line must never be reached")


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    main(Path(sys.argv[1]), sys.argv[2])
