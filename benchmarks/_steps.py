"""Training-only per-step benchmark shared by the tiny, mlp and gpu jobs."""

from __future__ import annotations

import argparse
import math
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from ._common import (
    MLP,
    EpochClock,
    LitClassifier,
    Report,
    alternate,
    bench_env,
    make_handler,
    plain_trainer,
    raw_train,
    step_samples,
    synthetic,
)

__all__ = [
    "add_floor_argument",
    "add_handler_arguments",
    "add_step_arguments",
    "handler_options",
    "run_steps",
]


def _batches_per_step(text: str) -> str | int:
    if text == "auto":
        return text
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 'auto' or a positive int")
    return value


def handler_options(k: str | int) -> dict[str, Any]:
    """``train()`` keyword arguments for K (none for "auto", the default: the scripts then also
    run on versions of nn_handler from before the option, to compare)."""
    return {} if k == "auto" else {"steps_per_execution": k}


def add_handler_arguments(parser: argparse.ArgumentParser) -> None:
    """``--steps-per-execution`` and ``--also-k1`` (the nn_handler way's batches per step)."""
    parser.add_argument(
        "--steps-per-execution",
        type=_batches_per_step,
        default="auto",
        metavar="K",
        help="train(steps_per_execution=K) for the nn_handler way (default: auto)",
    )
    parser.add_argument(
        "--also-k1",
        action="store_true",
        help="also time nn_handler_k1: nn_handler with steps_per_execution=1 (one batch per "
        "Lightning step)",
    )


def add_step_arguments(parser: argparse.ArgumentParser, batch: int, loader: str) -> None:
    parser.add_argument("--samples", type=int, default=8192, help="synthetic training samples")
    parser.add_argument("--batch", type=int, default=batch, help="batch size")
    parser.add_argument(
        "--loader",
        choices=("items", "batched", "device"),
        default=loader,
        help="items: DataLoader(batch_size=B, shuffle=True), collating B items per batch (what "
        "users write); batched: a BatchSampler that indexes the tensors once per batch (less "
        "loader time, so framework overhead weighs more); device: shuffled index tensors on the "
        "data's device, one gather per batch (for data held on the GPU)",
    )
    add_handler_arguments(parser)


def add_floor_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time lightning_bare: the same LightningModule without self.log (the floor of "
        "Lightning's automatic-optimization loop, which nn_handler runs on)",
    )


class DeviceBatchSampler:
    """Shuffled batches of indices as tensors on the data's device: one gather per batch."""

    def __init__(self, n: int, batch: int, device: torch.device):
        self.n, self.batch, self.device = n, batch, device

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch)

    def __iter__(self):
        return iter(torch.randperm(self.n, device=self.device).split(self.batch))


def loader_kwargs(ds: TensorDataset, batch: int, kind: str) -> dict[str, Any]:
    """DataLoader keyword arguments for ``kind`` (a fresh sampler each call)."""
    if kind == "device":
        sampler = DeviceBatchSampler(len(ds), batch, ds.tensors[0].device)
        return {"batch_size": None, "sampler": sampler}
    if kind == "batched":
        return {
            "batch_size": None,
            "sampler": BatchSampler(RandomSampler(ds), batch_size=batch, drop_last=False),
        }
    return {"batch_size": batch, "shuffle": True}


def run_steps(
    job: str,
    sizes: list[int],
    args: argparse.Namespace,
    raw_target: float | None,
    device: str = "cpu",
    amp: bool = False,
) -> dict[str, Any]:
    """Train ``MLP(sizes)`` the three ways, alternating, and report per-step medians."""
    with bench_env():
        dev = torch.device(device)
        ds = synthetic(args.samples, sizes[0], sizes[-1])
        if dev.type == "cuda":
            ds = TensorDataset(*(t.to(dev) for t in ds.tensors))
        steps = math.ceil(len(ds) / args.batch)
        title = (
            f"MLP {'-'.join(map(str, sizes))}, batch {args.batch}, {len(ds)} samples "
            f"({steps} steps/epoch), Adam, {args.loader} loader, {device}, nn_handler "
            f"steps_per_execution={args.steps_per_execution}"
            + (", AMP fp16" if amp else "")
            + ", training only"
        )
        report = Report(job, title, args.json)

        def raw() -> dict[str, list[float]]:
            torch.manual_seed(0)
            model = MLP(sizes).to(dev)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            loader = DataLoader(ds, **loader_kwargs(ds, args.batch, args.loader))
            return step_samples(raw_train(model, opt, loader, args.epochs, dev, amp), steps)

        def lightning(bare: bool = False) -> dict[str, list[float]]:
            torch.manual_seed(0)
            module = LitClassifier(sizes, log_steps=not bare)
            clock = EpochClock()
            extra: dict[str, Any] = {}
            if dev.type == "cuda":
                extra = {
                    "accelerator": "gpu",
                    "devices": [dev.index or 0],
                    "precision": "16-mixed" if amp else "32-true",
                }
            trainer = plain_trainer(args.epochs, [clock], **extra)
            trainer.fit(module, DataLoader(ds, **loader_kwargs(ds, args.batch, args.loader)))
            return step_samples(clock.stamps, steps)

        def handler(k: str | int = args.steps_per_execution) -> dict[str, list[float]]:
            h = make_handler(sizes, ds, loader_kwargs(ds, args.batch, args.loader), device=device)
            clock = EpochClock()
            h.add_callback(clock)
            h.train(args.epochs, progress_bar=False, use_amp=amp, **handler_options(k))
            return step_samples(clock.stamps, steps)

        ways = {"raw": raw, "lightning": lightning, "nn_handler": handler}
        if getattr(args, "floor", False):
            ways["lightning_bare"] = lambda: lightning(bare=True)
        if args.also_k1:
            ways["nn_handler_k1"] = lambda: handler(1)
        medians = report.times(alternate(ways, args.reps))
        report.standard_ratios(medians, raw_target)
        if "nn_handler_k1" in medians["wall"]:
            w, c = medians["wall"], medians["cpu"]
            report.ratio(
                "nn_handler_k1/raw", w["nn_handler_k1"] / w["raw"], c["nn_handler_k1"] / c["raw"]
            )
        if "lightning_bare" in medians["wall"]:
            w, c = medians["wall"], medians["cpu"]
            report.ratio(
                "nn_handler/lightning_bare",
                w["nn_handler"] / w["lightning_bare"],
                c["nn_handler"] / c["lightning_bare"],
            )
            report.ratio(
                "lightning_bare/raw", w["lightning_bare"] / w["raw"], c["lightning_bare"] / c["raw"]
            )
        return report.finish()
