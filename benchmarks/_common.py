"""Shared pieces of the benchmarks: model, data, timing clock, alternation and the report.

Timing method (the same for all three ways): one run trains ``epochs`` epochs and stamps the
wall clock at the start of every epoch and at the end of training (a Lightning callback's
``on_train_epoch_start``/``on_train_end`` for the frameworks, the same two lines in the raw loop).
Each epoch after the first is one sample of ``epoch time / steps per epoch``, so everything an
epoch costs (data loading, end-of-epoch reductions, validation, saving, logging) is counted and
the first, warm-up epoch is not. A run's value is the median of its samples; a way's value is the
median over repetitions. The ways run alternately, in a rotating order, after a warm-up round.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

__all__ = [
    "MLP",
    "MLP_SIZES",
    "TINY",
    "WAYS",
    "EpochClock",
    "LitClassifier",
    "Report",
    "alternate",
    "accuracy",
    "atomic_torch_save",
    "base_parser",
    "bench_env",
    "child_env",
    "make_handler",
    "plain_trainer",
    "raw_train",
    "stamp",
    "step_samples",
    "synthetic",
]

WAYS = ("raw", "lightning", "nn_handler")
TINY = [32, 32, 32, 10]
MLP_SIZES = [784, 512, 512, 10]


class MLP(nn.Module):
    """Linear layers of the given widths with ReLU between them."""

    def __init__(self, sizes: Sequence[int] = (32, 32, 32, 10)):
        super().__init__()
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of correct arg-max predictions, kept on the device (no host sync)."""
    return (outputs.argmax(dim=1) == targets).float().mean()


def synthetic(n: int, in_dim: int, classes: int = 10, seed: int = 0) -> TensorDataset:
    """``n`` random inputs with labels from a fixed random linear map (learnable)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, in_dim, generator=g)
    w = torch.randn(in_dim, classes, generator=g)
    return TensorDataset(x, (x @ w).argmax(dim=1))


@contextlib.contextmanager
def bench_env() -> Iterator[None]:
    """One intra-op thread (the core count is not the variable) and no Lightning banners or the
    warnings the benchmark setups trigger on purpose; everything is restored on exit."""
    threads = torch.get_num_threads()
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [log.level for log in loggers]
    torch.set_num_threads(1)
    for log in loggers:
        log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        torch.set_num_threads(threads)
        for log, level in zip(loggers, levels):
            log.setLevel(level)


_QUIET_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
    "lightning.fabric.utilities.seed",
    "lightning.fabric.utilities.distributed",
    "lightning.pytorch.utilities.distributed",
)
_QUIET_WARNINGS = (
    ".*does not have many workers.*",
    ".*smaller than the logging interval.*",
    ".*LeafSpec.*",
    ".*is not recommended.*",
    ".*GPU available but not used.*",
    ".*Checkpoint directory.*exists and is not empty.*",
    ".*use_amp=True needs a CUDA device.*",
    ".*`srun` command is available.*",
    ".*You defined a `validation_step` but have no `val_dataloader`.*",
)


ROOT = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """Environment for a benchmark subprocess: ``benchmarks`` importable from any directory."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


Stamp = tuple[float, float]


def stamp() -> Stamp:
    """``(wall, process cpu)`` seconds now; CUDA work is waited for first."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter(), time.process_time()


class EpochClock(L.Callback):
    """Clock stamps at the start of every training epoch and at the end of training."""

    def __init__(self) -> None:
        self.stamps: list[Stamp] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.stamps.append(stamp())

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.stamps.append(stamp())


Samples = dict[str, list[float]]


def step_samples(stamps: Sequence[Stamp], steps: int) -> Samples:
    """Per-step wall and CPU seconds of every epoch but the first (the warm-up)."""
    out: Samples = {"wall": [], "cpu": []}
    for (w0, c0), (w1, c1) in list(zip(stamps[:-1], stamps[1:]))[1:]:
        out["wall"].append((w1 - w0) / steps)
        out["cpu"].append((c1 - c0) / steps)
    return out


def alternate(
    runs: dict[str, Callable[[], Samples]], reps: int, warmup: bool = True
) -> dict[str, Samples]:
    """Call each way ``reps`` times in a rotating order; return each way's per-run medians."""
    names = list(runs)
    if warmup:
        for name in names:
            runs[name]()
    out: dict[str, Samples] = {name: {"wall": [], "cpu": []} for name in names}
    for r in range(reps):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            samples = runs[name]()
            for clock in ("wall", "cpu"):
                out[name][clock].append(statistics.median(samples[clock]))
    return out


def raw_train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    epochs: int,
    device: torch.device | str = "cpu",
    amp: bool = False,
    val_loader: DataLoader | None = None,
    epoch_end: Callable | None = None,
) -> list[float]:
    """The hand-written loop: device-side epoch sums, one ``.item()`` per epoch; stamps back.

    With ``val_loader`` it also validates every epoch (loss and accuracy) and hands the epoch
    values to ``epoch_end(epoch, values)`` (logging, saving) — the work nn_handler does.
    """
    device = torch.device(device)
    scaler = torch.amp.GradScaler("cuda") if amp else None
    stamps = []
    for epoch in range(epochs):
        stamps.append(stamp())
        model.train()
        total = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.float64, device=device)
        seen = 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                out = model(x)
                loss = F.cross_entropy(out, y)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            total += loss.detach() * len(x)
            seen += len(x)
            if val_loader is not None:
                correct += accuracy(out.detach(), y)
        values = {"loss": total.item() / seen}
        if val_loader is not None:
            values["accuracy"] = correct.item() / len(loader)
            values.update(_raw_validate(model, val_loader, device))
        if epoch_end is not None:
            epoch_end(epoch, values)
    stamps.append(stamp())
    return stamps


def _raw_validate(model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.float64, device=device)
    seen = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = model(x)
            total += F.cross_entropy(out, y) * len(x)
            correct += accuracy(out, y)
            seen += len(x)
    return {"val_loss": total.item() / seen, "val_accuracy": correct.item() / len(loader)}


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temp file in the same directory, fsync, rename (the fair baseline)."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class LitClassifier(L.LightningModule):
    """Idiomatic plain Lightning: ``self.log(..., on_step=True, on_epoch=True)`` every step."""

    def __init__(
        self,
        sizes: Sequence[int],
        lr: float = 1e-3,
        with_accuracy: bool = False,
        log_steps: bool = True,
    ):
        super().__init__()
        self.model = MLP(sizes)
        self.lr = lr
        self.log_steps = log_steps  # False: the bare loop, to measure Lightning's own floor
        self.with_accuracy = with_accuracy
        if with_accuracy:
            from torchmetrics.classification import MulticlassAccuracy

            self.train_acc = MulticlassAccuracy(num_classes=sizes[-1], average="micro")
            self.val_acc = MulticlassAccuracy(num_classes=sizes[-1], average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        out = self.model(x)
        loss = F.cross_entropy(out, y)
        if self.log_steps:
            self.log("train_loss", loss, on_step=True, on_epoch=True)
        if self.with_accuracy:
            self.train_acc(out, y)
            self.log("train_acc", self.train_acc, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        out = self.model(x)
        self.log("val_loss", F.cross_entropy(out, y), on_epoch=True)
        if self.with_accuracy:
            self.val_acc(out, y)
            self.log("val_acc", self.val_acc, on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def plain_trainer(epochs: int, callbacks: list[Any], **overrides: Any) -> L.Trainer:
    """A plain Lightning Trainer: no bar, no summary; no logger/checkpointing unless given."""
    args: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": epochs,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "callbacks": callbacks,
    }
    args.update(overrides)
    return L.Trainer(**args)


def make_handler(
    sizes: Sequence[int],
    train: TensorDataset,
    loader_kwargs: dict[str, Any],
    lr: float = 1e-3,
    device: str = "cpu",
):
    """An NNHandler configured like the other two ways (model seeded identically)."""
    from nn_handler import NNHandler

    torch.manual_seed(0)
    handler = NNHandler(MLP, device=device, sizes=list(sizes))
    handler.set_optimizer(torch.optim.Adam, lr=lr)
    handler.set_loss_fn(F.cross_entropy)
    handler.set_train_loader(train, **loader_kwargs)
    return handler


def base_parser(description: str, reps: int = 5, epochs: int = 4) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--reps", type=int, default=reps, help="timed repetitions per way")
    parser.add_argument(
        "--epochs",
        type=int,
        default=epochs,
        help="epochs per run; the first is a warm-up and is not timed",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, a few seconds: checks the script, not the speed",
    )
    parser.add_argument("--json", metavar="PATH", help="append the results as one JSON line")
    return parser


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.4f}"


def _verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return "met" if value <= target else "missed"


class Report:
    """Prints one job's results as regular rows (``time``, ``ratio``, ``value``, ``note``).

    Row formats (parsed by the smoke test, easy to grep)::

        time  <way>  wall <ms> <unit>  cpu <ms> <unit>  (wall spread <ms>-<ms>, n=<runs>)
        ratio <a>/<b>  wall <x.xxx>  cpu <x.xxx>  [spread <x.xxx>-<x.xxx>]
              [target <= <t>: wall met|missed, cpu met|missed]

    A time row's spread is the range of the per-run medians; a ratio row's spread is the range
    of the wall-clock ratios of the runs made in the same round of the alternation.
        value <name>  <number> <unit>  [target <= <t>: met|missed]
        note  <text>
    """

    def __init__(self, job: str, title: str, json_path: str | None = None):
        self.job = job
        self.json_path = json_path
        self.data: dict[str, Any] = {
            "job": job,
            "title": title,
            "times": {},
            "ratios": {},
            "values": {},
            "notes": [],
            "spreads": {},
            "torch": torch.__version__,
            "lightning": L.__version__,
        }
        print(f"== {job}: {title}", flush=True)

    def times(self, runs: dict[str, Samples], unit: str = "ms/step") -> dict[str, dict[str, float]]:
        """Rows for each way's median over runs (seconds in, ms out); return ``clock -> way``."""
        med: dict[str, dict[str, float]] = {"wall": {}, "cpu": {}}
        self._runs = runs
        for way, samples in runs.items():
            for clock in med:
                med[clock][way] = statistics.median(samples[clock])
            self.data["times"][way] = {c: med[c][way] for c in med}
            wall = samples["wall"]
            self.data["spreads"][way] = [min(wall), max(wall)]
            print(
                f"  time  {way:<14} wall {_ms(med['wall'][way]):>9} {unit}  cpu "
                f"{_ms(med['cpu'][way]):>9} {unit}  (wall spread {_ms(min(wall))}-"
                f"{_ms(max(wall))}, n={len(wall)})",
                flush=True,
            )
        return med

    def _ratio_spread(self, name: str) -> tuple[float, float] | None:
        """Range of ``a/b`` over the alternation's rounds, when ``name`` is two timed ways."""
        runs = getattr(self, "_runs", {})
        a, _, b = name.partition("/")
        if a not in runs or b not in runs or len(runs[a]["wall"]) != len(runs[b]["wall"]):
            return None
        per_round = [x / y for x, y in zip(runs[a]["wall"], runs[b]["wall"]) if y]
        return (min(per_round), max(per_round)) if per_round else None

    def ratio(
        self,
        name: str,
        wall: float,
        cpu: float | None = None,
        target: float | None = None,
        label: str = "wall",
    ) -> None:
        """A ratio row; the target is judged on the first value (``label``: what it measures),
        the CPU-time ratio is shown alongside when given."""
        self.data["ratios"][name] = {label: wall, "cpu": cpu, "target": target}
        line = f"  ratio {name:<26} {label} {wall:7.3f}"
        if cpu is not None:
            line += f"  cpu {cpu:7.3f}"
        spread = self._ratio_spread(name)
        if spread is not None:
            self.data["ratios"][name]["spread"] = list(spread)
            line += f"  spread {spread[0]:.3f}-{spread[1]:.3f}"
        if target is not None:
            line += f"  target <= {target:g}: {label} {_verdict(wall, target)}"
            if cpu is not None:
                line += f", cpu {_verdict(cpu, target)}"
        print(line, flush=True)

    def value(self, name: str, value: float, unit: str, target: float | None = None) -> None:
        self.data["values"][name] = {"value": value, "unit": unit, "target": target}
        line = f"  value {name:<26} {value:10.4f} {unit}"
        if target is not None:
            line += f"  target <= {target:g}: {_verdict(value, target)}"
        print(line, flush=True)

    def note(self, text: str) -> None:
        self.data["notes"].append(text)
        print(f"  note  {text}", flush=True)

    def standard_ratios(
        self,
        med: dict[str, dict[str, float]],
        raw_target: float | None,
        lightning_target: float | None = None,
    ) -> None:
        """nn_handler/raw, nn_handler/lightning and lightning/raw from :meth:`times`'s result."""
        w, c = med["wall"], med["cpu"]
        self.ratio(
            "nn_handler/raw", w["nn_handler"] / w["raw"], c["nn_handler"] / c["raw"], raw_target
        )
        self.ratio(
            "nn_handler/lightning",
            w["nn_handler"] / w["lightning"],
            c["nn_handler"] / c["lightning"],
            lightning_target,
        )
        self.ratio("lightning/raw", w["lightning"] / w["raw"], c["lightning"] / c["raw"])

    def finish(self) -> dict[str, Any]:
        if self.json_path:
            with open(self.json_path, "a") as f:
                f.write(json.dumps(self.data) + "\n")
        return self.data
