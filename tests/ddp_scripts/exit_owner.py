"""Who destroys the process group at exit; run under torchrun (2 processes, gloo).

Usage: exit_owner.py OUT MODE, MODE one of
  ours       NNHandler creates the group and the script leaves it: nn_handler must destroy it;
  user       the script creates the group first: nn_handler must leave it (the script destroys it
             in its own exit hook, after recording that it was still there);
  destroyed  NNHandler creates the group and the script destroys it itself before exiting.
Each rank writes OUT/rank<r>.json: was a default group still initialised when the script's exit
hook ran (registered before nn_handler is imported, so it runs after nn_handler's), and which gloo
worker threads were still running then. In "ours" and "destroyed" the script first trains one
epoch and keeps the default group referenced from a reference cycle (as a finished trainer's
objects do): the group's threads must be gone before interpreter finalization all the same, or a
rank can abort at exit.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

OUT, MODE = Path(sys.argv[1]), sys.argv[2]
RANK = int(os.environ["RANK"])


def gloo_threads() -> list[str]:
    tasks = Path("/proc/self/task")
    names = (t.joinpath("comm").read_text().strip() for t in tasks.iterdir())
    return sorted(n for n in names if "gloo" in n)


def record_at_exit() -> None:
    alive = dist.is_initialized()
    report = {"initialized_at_exit": alive, "gloo_threads_at_exit": gloo_threads()}
    (OUT / f"rank{RANK}.json").write_text(json.dumps(report))
    if MODE == "user" and alive:
        dist.destroy_process_group()  # the user's own group, the user's own teardown


atexit.register(record_at_exit)  # before nn_handler registers anything: runs after it

if MODE == "user":
    dist.init_process_group("gloo")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models import TinyNet  # noqa: E402

from nn_handler import NNHandler  # noqa: E402

handler = NNHandler(TinyNet)
assert handler._world_size == 2 and dist.is_initialized()
total = torch.ones(1)
dist.all_reduce(total)
assert total.item() == 2
if MODE != "user":
    data = torch.utils.data.TensorDataset(torch.randn(32, 8), torch.randint(0, 3, (32,)))
    handler.set_train_loader(data, batch_size=8)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.train(1, progress_bar=False)
    cycle: list = [dist.group.WORLD]
    cycle.append(cycle)  # only the collector frees it
    del cycle
if MODE == "destroyed":
    dist.destroy_process_group()
