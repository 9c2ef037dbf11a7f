"""A tiny NNHandler training started by nn_handler_run; one JSON report per rank.

Usage: launcher_job.py OUT_DIR. The report says what the handler and Lightning's Trainer saw:
ranks, world size, nodes, cluster environment, and the history (identical on every rank).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L  # noqa: E402
import torch  # noqa: E402
from models import TinyNet  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from nn_handler import NNHandler  # noqa: E402

ENV_KEYS = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "TORCHELASTIC_RUN_ID",
    "SLURM_JOB_ID",
    "SLURM_PROCID",
)


class Probe(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.seen = {
            "trainer_num_nodes": trainer.num_nodes,
            "strategy_num_nodes": trainer.strategy.num_nodes,
            "trainer_world": trainer.world_size,
            "global_rank": trainer.global_rank,
            "node_rank": trainer.node_rank,
            "local_rank": trainer.local_rank,
            "cluster": type(trainer.strategy.cluster_environment).__name__,
            "strategy": type(trainer.strategy).__name__,
        }


def main() -> None:
    out = Path(sys.argv[1])
    torch.manual_seed(0)
    handler = NNHandler(TinyNet, hidden=8)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g)
    handler.set_train_loader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=4)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    probe = Probe()
    handler.add_callback(probe)
    handler.train(2, progress_bar=False)
    report = {
        "rank": handler._rank,
        "local_rank": handler._local_rank,
        "world_size": handler._world_size,
        "distributed": handler._distributed,
        "env": {k: os.environ.get(k) for k in ENV_KEYS},
        "probe": probe.seen,
        "train_losses": handler.train_losses,
        "weights": [round(float(p.detach().sum()), 6) for p in handler.module.parameters()],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{handler._rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
