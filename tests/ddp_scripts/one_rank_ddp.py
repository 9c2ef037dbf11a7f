"""DDP on one process (Lightning's ``DDPStrategy``, ``devices=1``, gloo): the fast check of
accumulation and chunked steps under DDP. Prints one JSON line.

A one-process ``DistributedDataParallel`` still runs its reducer and communication hook for
every synchronising backward, so the count of all-reduces is that of several processes. Run
in its own interpreter: the strategy creates a process group and sets launcher variables.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chunk_job  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from lightning.pytorch.strategies import DDPStrategy  # noqa: E402

ACCUMULATE = 3


def main() -> None:
    data = chunk_job.dataset()
    h = chunk_job.handler(data)
    count = chunk_job.CountReductions()
    h.add_callback(count)
    h.train(
        chunk_job.EPOCHS,
        progress_bar=False,
        gradient_accumulation_steps=ACCUMULATE,
        trainer_kwargs={"strategy": DDPStrategy(), "devices": 1, "accelerator": "cpu"},
    )
    loop = chunk_job.hand_written(data, ACCUMULATE, rank=0, world=1)
    report = {
        "batches": count.batches,
        "reductions": count.state["calls"],
        "steps": h.run_state.global_step,
        "loop_reductions": loop["reductions"],
        "loop_steps": loop["steps"],
        "same_weights": all(
            torch.equal(a, b)
            for a, b in zip(h.module.state_dict().values(), loop["weights"].values())
        ),
    }
    print(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
