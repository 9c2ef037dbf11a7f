"""Job 7 — job 1 (tiny MLP) on 2 gloo processes under torchrun: nn_handler vs a hand-written loop.

Target: nn_handler/raw per batch <= 1.10, with one batch per optimizer step and with gradient
accumulation (``--accumulate``, default 4). The launcher starts
``torchrun --standalone --nproc_per_node 2`` on this module with ``--worker``; every rank runs
the ways alternately and rank 0 prints the report (per-batch times are rank 0's). The raw way is
what a careful user writes: ``DistributedDataParallel`` + ``DistributedSampler``, ``no_sync()``
for the batches before the last of an accumulation window, the epoch loss summed on the device
and all-reduced once per epoch. Plain Lightning (``accumulate_grad_batches``) is context. Ways
with accumulation end in ``_accN``; ``--also-k1`` adds nn_handler with one batch per Lightning
step (``nn_handler_k1``).

``python -m benchmarks.bench_ddp [--reps N] [--epochs E] [--nproc 2] [--accumulate N] [--also-k1]``
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._common import ROOT, base_parser, bench_env, child_env

TARGET = 1.10


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=64, help="batch size per process")
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument(
        "--accumulate",
        type=int,
        default=4,
        help="also time every way with gradient accumulation over N batches (1: not at all)",
    )
    parser.add_argument(
        "--also-k1", action="store_true", help="add nn_handler with steps_per_execution=1"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds before giving up")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.samples, args.reps, args.epochs = 512, 1, 2
    if args.worker:
        with bench_env():
            try:
                return _worker(args)
            finally:
                _destroy_process_group()
    return _launch(args)


def _destroy_process_group() -> None:
    """The raw way creates the group itself: like any script that does, it destroys it (a group
    left to interpreter teardown can abort the process; nn_handler only destroys its own)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _launch(args: Any) -> dict[str, Any]:
    fd, out = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    env = child_env()
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={args.nproc}",
        "-m",
        "benchmarks.bench_ddp",
        "--worker",
        "--reps",
        str(args.reps),
        "--epochs",
        str(args.epochs),
        "--samples",
        str(args.samples),
        "--batch",
        str(args.batch),
        "--accumulate",
        str(args.accumulate),
        "--json",
        out,
    ]
    if args.also_k1:
        cmd.append("--also-k1")
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.timeout
        )
        print(proc.stdout, end="", flush=True)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            raise RuntimeError(f"the torchrun job failed with exit code {proc.returncode}")
        lines = Path(out).read_text().splitlines()
        data = json.loads(lines[-1]) if lines else {}
        if args.json and data:
            with open(args.json, "a") as f:
                f.write(json.dumps(data) + "\n")
        return data
    finally:
        os.remove(out)


def _worker(args: Any) -> dict[str, Any]:
    import contextlib

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler

    from ._common import (
        MLP,
        TINY,
        EpochClock,
        LitClassifier,
        Report,
        alternate,
        make_handler,
        plain_trainer,
        stamp,
        step_samples,
        synthetic,
    )

    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    ds = synthetic(args.samples, TINY[0], TINY[-1])
    steps = math.ceil(math.ceil(len(ds) / world) / args.batch)  # batches per epoch and rank
    report_path = args.json if rank == 0 else None

    def raw(accumulate: int) -> dict[str, list[float]]:
        if not dist.is_initialized():
            dist.init_process_group("gloo")
        torch.manual_seed(0)
        model = DistributedDataParallel(MLP(TINY))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        sampler = DistributedSampler(ds, shuffle=True, seed=0)
        loader = DataLoader(ds, batch_size=args.batch, sampler=sampler)
        n = len(loader)
        dist.barrier()
        stamps = []
        for epoch in range(args.epochs):
            stamps.append(stamp())
            sampler.set_epoch(epoch)
            total = torch.zeros(2, dtype=torch.float64)
            for i, (x, y) in enumerate(loader):
                if i % accumulate == 0:
                    opt.zero_grad(set_to_none=True)
                last = (i + 1) % accumulate == 0 or i + 1 == n
                # The batches before a window's last gather gradients without communicating.
                with contextlib.nullcontext() if last else model.no_sync():
                    loss = torch.nn.functional.cross_entropy(model(x), y)
                    (loss / accumulate if accumulate > 1 else loss).backward()
                if last:
                    opt.step()
                total[0] += loss.detach() * len(x)
                total[1] += len(x)
            dist.all_reduce(total)
            _ = (total[0] / total[1]).item()
        stamps.append(stamp())
        return step_samples(stamps, steps)

    def lightning(accumulate: int) -> dict[str, list[float]]:
        torch.manual_seed(0)
        clock = EpochClock()
        trainer = plain_trainer(
            args.epochs,
            [clock],
            devices=world,
            strategy="ddp",
            accumulate_grad_batches=accumulate,
        )
        trainer.fit(LitClassifier(TINY), DataLoader(ds, batch_size=args.batch, shuffle=True))
        return step_samples(clock.stamps, steps)

    def handler(accumulate: int, k1: bool = False) -> dict[str, list[float]]:
        h = make_handler(TINY, ds, {"batch_size": args.batch, "shuffle": True})
        clock = EpochClock()
        h.add_callback(clock)
        options: dict[str, Any] = {"progress_bar": False}
        if accumulate > 1:
            options["gradient_accumulation_steps"] = accumulate
        if k1:
            options["steps_per_execution"] = 1
        h.train(args.epochs, **options)
        return step_samples(clock.stamps, steps)

    accumulations = [1] if args.accumulate <= 1 else [1, args.accumulate]
    ways: dict[str, Any] = {}
    for a in accumulations:
        tail = "" if a == 1 else f"_acc{a}"
        ways["raw" + tail] = functools.partial(raw, a)
        ways["lightning" + tail] = functools.partial(lightning, a)
        ways["nn_handler" + tail] = functools.partial(handler, a)
        if args.also_k1:
            ways["nn_handler_k1" + tail] = functools.partial(handler, a, True)
    report = (
        Report(
            "ddp",
            f"MLP {'-'.join(map(str, TINY))}, {world} gloo processes (torchrun), "
            f"batch {args.batch} per process, {len(ds)} samples ({steps} batches/epoch per "
            f"process), training only; _acc{args.accumulate}: gradient accumulation over "
            f"{args.accumulate} batches, times per batch",
            report_path,
        )
        if rank == 0
        else None
    )
    runs = alternate(ways, args.reps)
    if report is None:
        return {}
    med = report.times(runs)
    w, c = med["wall"], med["cpu"]
    for a in accumulations:
        tail = "" if a == 1 else f"_acc{a}"
        raw_way, ours = "raw" + tail, "nn_handler" + tail
        report.ratio(f"{ours}/{raw_way}", w[ours] / w[raw_way], c[ours] / c[raw_way], TARGET)
        light = "lightning" + tail
        report.ratio(f"{ours}/{light}", w[ours] / w[light], c[ours] / c[light])
        report.ratio(f"{light}/{raw_way}", w[light] / w[raw_way], c[light] / c[raw_way])
        if args.also_k1:
            k1 = "nn_handler_k1" + tail
            report.ratio(f"{k1}/{raw_way}", w[k1] / w[raw_way], c[k1] / c[raw_way])
    return report.finish()


if __name__ == "__main__":
    main()
