"""Probe: would manual optimization lower Lightning's per-step cost on the tiny MLP?

Run: python -m benchmarks.probe_manual_optimization

Prints the median per-step time of a raw loop and of two plain LightningModules without any
logging, one with automatic and one with manual optimization, and their ratios to raw. The result
is recorded in docs/performance.md: manual optimization alone saves about a tenth of a raw
step; most of Lightning's cost is paid per Lightning step, which chunked steps
(``train(steps_per_execution=...)``) pay once per several batches.
"""

from __future__ import annotations

import logging
import statistics
import time
import warnings

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

STEPS = 128  # 8192 samples / batch 64


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10)
    )


def _data() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(
        torch.randn(8192, 32, generator=g), torch.randint(0, 10, (8192,), generator=g)
    )


def raw_step_time(data: TensorDataset, epochs: int = 3) -> float:
    model = _mlp()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    loader = DataLoader(data, batch_size=64, shuffle=True)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) / STEPS


class Automatic(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = _mlp()

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self.model(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 1e-3)


class Manual(Automatic):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        optimizer = self.optimizers(use_pl_optimizer=False)
        loss = nn.functional.cross_entropy(self.model(batch[0]), batch[1])
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()


class _EpochClock(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.times.append(time.perf_counter() - self._start)


def lightning_step_time(module_class: type, data: TensorDataset, epochs: int = 3) -> float:
    clock = _EpochClock()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    trainer.fit(module_class(), DataLoader(data, batch_size=64, shuffle=True))
    return statistics.median(clock.times[1:]) / STEPS


def main(repetitions: int = 4) -> None:
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    data = _data()
    results: dict[str, list[float]] = {"raw": [], "automatic": [], "manual": []}
    for _ in range(repetitions):  # alternated, so machine load hits all three alike
        results["raw"].append(raw_step_time(data))
        results["automatic"].append(lightning_step_time(Automatic, data))
        results["manual"].append(lightning_step_time(Manual, data))
    ms = {k: statistics.median(v) * 1e3 for k, v in results.items()}
    for name, value in ms.items():
        print(f"  time  {name:<10} {value:.4f} ms/step")
    print(f"  ratio automatic/raw {ms['automatic'] / ms['raw']:.3f}")
    print(f"  ratio manual/raw    {ms['manual'] / ms['raw']:.3f}")


if __name__ == "__main__":
    main()
