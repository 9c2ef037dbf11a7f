"""How many collectives a 2-process ``train()`` makes per epoch; run under torchrun (gloo).

Usage: collectives_job.py OUT. Counts the calls to ``torch.distributed``'s collectives (wrapped
before nn_handler and Lightning are imported) during ``train(3)`` and ``train(6)`` for each
``steps_per_execution`` case; the difference of the two, divided by 3, is the epoch's share (what
a call costs once cancels out). Rank 0 writes OUT/collectives.json: ``{case: {name: per epoch}}``.
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

COUNTED = ("all_reduce", "barrier", "broadcast", "all_gather", "all_gather_object", "reduce")
calls: collections.Counter[str] = collections.Counter()


def _counting(name: str):
    original = getattr(dist, name)

    def counted(*args, **kwargs):
        calls[name] += 1
        return original(*args, **kwargs)

    return counted


for _name in COUNTED:
    setattr(dist, _name, _counting(_name))

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models import TinyNet  # noqa: E402

from nn_handler import NNHandler  # noqa: E402

OUT = Path(sys.argv[1])
CASES = {"K=1": 1, "K=4": 4}
BATCHES_PER_EPOCH = 8  # 64 samples a rank, batches of 8


def per_epoch(steps_per_execution: int) -> dict[str, float]:
    torch.manual_seed(0)
    handler = NNHandler(TinyNet)
    data = torch.utils.data.TensorDataset(torch.randn(128, 8), torch.randint(0, 3, (128,)))
    handler.set_train_loader(data, batch_size=8, shuffle=True)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    counts = []
    for epochs in (3, 6):
        calls.clear()
        handler.train(epochs, progress_bar=False, steps_per_execution=steps_per_execution)
        counts.append(dict(calls))
    return {n: (counts[1].get(n, 0) - counts[0].get(n, 0)) / 3 for n in COUNTED}


report = {case: per_epoch(k) for case, k in CASES.items()}
if dist.get_rank() == 0:
    (OUT / "collectives.json").write_text(json.dumps(report))
