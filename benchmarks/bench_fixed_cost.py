"""Job 4 — the fixed cost of one ``train()`` call, and the time to the end of the first one.

``train(1)`` on one batch, repeated on the same handler, against plain Lightning's Trainer
construction + ``fit`` of one epoch of one batch (target: <= 1.2x). Then, in fresh interpreters,
the time from the first import to the end of the first training call (imports, model, one epoch
of one batch) with nn_handler against plain Lightning (target: <= 0.3 s more). ``import
nn_handler`` alone is reported too, as context only: it defers importing Lightning to the first
``train()``, so the import is shorter but the time is spent later, not saved.

``python -m benchmarks.bench_fixed_cost [--reps N] [--import-reps N]``
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any

import torch
from torch.utils.data import DataLoader

from ._common import (
    MLP,
    TINY,
    LitClassifier,
    Report,
    base_parser,
    bench_env,
    make_handler,
    plain_trainer,
    raw_train,
    synthetic,
)

CALL_TARGET = 1.2
FIRST_TRAIN_TARGET_S = 0.3
_IMPORT_SNIPPET = (
    "import time; t = time.perf_counter(); import {name}; print(time.perf_counter() - t)"
)
# A user script's first training: imports, data, model, one epoch of one batch. The clock starts
# before the first import (interpreter start-up itself excluded) and stops when training returns.
_FIRST_TRAIN = {
    "nn_handler": """
import time
t = time.perf_counter()
import torch
from torch import nn
from torch.utils.data import TensorDataset
from nn_handler import NNHandler
torch.set_num_threads(1)
torch.manual_seed(0)
data = TensorDataset(torch.randn(64, 32), torch.randint(0, 10, (64,)))
handler = NNHandler(nn.Linear, in_features=32, out_features=10)
handler.set_optimizer(torch.optim.Adam, lr=1e-3)
handler.set_loss_fn(nn.functional.cross_entropy)
handler.set_train_loader(data, batch_size=64, shuffle=True)
handler.train(1, progress_bar=False)
print(time.perf_counter() - t)
""",
    "lightning": """
import time
t = time.perf_counter()
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import lightning as L
torch.set_num_threads(1)


class Lit(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(32, 10)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


torch.manual_seed(0)
data = TensorDataset(torch.randn(64, 32), torch.randint(0, 10, (64,)))
trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False)
trainer.fit(Lit(), DataLoader(data, batch_size=64, shuffle=True))
print(time.perf_counter() - t)
""",
}


def _fresh_seconds(code: str) -> float:
    """The number a snippet prints last, run in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def import_seconds(name: str) -> float:
    """Seconds ``import name`` takes in a fresh interpreter (startup itself excluded)."""
    return _fresh_seconds(_IMPORT_SNIPPET.format(name=name))


def first_train_seconds(way: str) -> float:
    """Seconds from the first import to the end of the first training call, fresh interpreter."""
    return _fresh_seconds(_FIRST_TRAIN[way])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = base_parser(__doc__.splitlines()[0], reps=15, epochs=1)
    parser.add_argument("--import-reps", type=int, default=5)
    args = parser.parse_args(argv)
    if args.smoke:
        args.reps, args.import_reps = 2, 1
    with bench_env():
        return _run(args)


def _run(args: Any) -> dict[str, Any]:
    batch = 64
    ds = synthetic(batch, TINY[0], TINY[-1])
    report = Report(
        "fixed_cost",
        f"one epoch of one batch (MLP {'-'.join(map(str, TINY))}, "
        f"batch {batch}) per call; imports in fresh interpreters",
        args.json,
    )
    handler = make_handler(TINY, ds, {"batch_size": batch, "shuffle": True})

    def raw() -> float:
        torch.manual_seed(0)
        model = MLP(TINY)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        t = time.perf_counter()
        raw_train(model, opt, DataLoader(ds, batch_size=batch, shuffle=True), 1)
        return time.perf_counter() - t

    def lightning() -> float:
        torch.manual_seed(0)
        module = LitClassifier(TINY)
        loader = DataLoader(ds, batch_size=batch, shuffle=True)
        t = time.perf_counter()
        plain_trainer(1, []).fit(module, loader)
        return time.perf_counter() - t

    def nn_handler() -> float:
        t = time.perf_counter()
        handler.train(1, progress_bar=False)
        return time.perf_counter() - t

    ways = {"raw": raw, "lightning": lightning, "nn_handler": nn_handler}
    for fn in ways.values():  # warm-up
        fn()
    calls: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for r in range(args.reps):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            calls[name].append(ways[name]())
    med = {name: statistics.median(v) for name, v in calls.items()}
    for name, v in calls.items():
        unit = f"ms/call (min {min(v) * 1e3:.2f}, n={len(v)})"
        report.value(f"call {name}", med[name] * 1e3, unit)
    report.ratio("nn_handler/lightning", med["nn_handler"] / med["lightning"], target=CALL_TARGET)
    report.ratio("nn_handler/raw", med["nn_handler"] / med["raw"])

    imports: dict[str, list[float]] = {"lightning": [], "nn_handler": []}
    first: dict[str, list[float]] = {"lightning": [], "nn_handler": []}
    for r in range(args.import_reps):
        order = ["lightning", "nn_handler"] if r % 2 == 0 else ["nn_handler", "lightning"]
        for name in order:
            imports[name].append(import_seconds(name))
            first[name].append(first_train_seconds(name))
    imed = {name: statistics.median(v) for name, v in imports.items()}
    fmed = {name: statistics.median(v) for name, v in first.items()}
    for name, v in imports.items():
        report.value(f"import {name}", imed[name], f"s (min {min(v):.3f}, n={len(v)})")
    for name, v in first.items():
        report.value(f"first train {name}", fmed[name], f"s (min {min(v):.3f}, n={len(v)})")
    report.value(
        "first train nn_handler - lightning",
        fmed["nn_handler"] - fmed["lightning"],
        "s",
        target=FIRST_TRAIN_TARGET_S,
    )
    return report.finish()


if __name__ == "__main__":
    main()
