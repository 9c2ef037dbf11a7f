"""Job 7 — job 1 (tiny MLP) on 2 gloo processes under torchrun: nn_handler vs plain Lightning.

Target: nn_handler/plain-Lightning per step <= 1.05. The launcher starts
``torchrun --standalone --nproc_per_node 2`` on this module with ``--worker``; every rank runs the
three ways alternately (raw: ``DistributedDataParallel`` + ``DistributedSampler``, one
all-reduce of the epoch loss per epoch) and rank 0 prints the report. Per-step times are rank 0's.

``python -m benchmarks.bench_ddp [--reps N] [--epochs E] [--nproc 2]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._common import ROOT, base_parser, bench_env, child_env

TARGET = 1.05


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=64, help="batch size per process")
    parser.add_argument("--nproc", type=int, default=2)
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
        "--json",
        out,
    ]
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
    steps = math.ceil(math.ceil(len(ds) / world) / args.batch)
    report_path = args.json if rank == 0 else None

    def raw() -> dict[str, list[float]]:
        if not dist.is_initialized():
            dist.init_process_group("gloo")
        torch.manual_seed(0)
        model = DistributedDataParallel(MLP(TINY))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        sampler = DistributedSampler(ds, shuffle=True, seed=0)
        loader = DataLoader(ds, batch_size=args.batch, sampler=sampler)
        dist.barrier()
        stamps = []
        for epoch in range(args.epochs):
            stamps.append(stamp())
            sampler.set_epoch(epoch)
            total = torch.zeros(2, dtype=torch.float64)
            for x, y in loader:
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                total[0] += loss.detach() * len(x)
                total[1] += len(x)
            dist.all_reduce(total)
            _ = (total[0] / total[1]).item()
        stamps.append(stamp())
        return step_samples(stamps, steps)

    def lightning() -> dict[str, list[float]]:
        torch.manual_seed(0)
        clock = EpochClock()
        trainer = plain_trainer(args.epochs, [clock], devices=world, strategy="ddp")
        trainer.fit(LitClassifier(TINY), DataLoader(ds, batch_size=args.batch, shuffle=True))
        return step_samples(clock.stamps, steps)

    def handler() -> dict[str, list[float]]:
        h = make_handler(TINY, ds, {"batch_size": args.batch, "shuffle": True})
        clock = EpochClock()
        h.add_callback(clock)
        h.train(args.epochs, progress_bar=False)
        return step_samples(clock.stamps, steps)

    report = (
        Report(
            "ddp",
            f"MLP {'-'.join(map(str, TINY))}, {world} gloo processes (torchrun), "
            f"batch {args.batch} per process, {len(ds)} samples ({steps} steps/epoch per process), "
            "training only",
            report_path,
        )
        if rank == 0
        else None
    )
    runs = alternate({"raw": raw, "lightning": lightning, "nn_handler": handler}, args.reps)
    if report is None:
        return {}
    med = report.times(runs)
    w, c = med["wall"], med["cpu"]
    report.ratio(
        "nn_handler/lightning",
        w["nn_handler"] / w["lightning"],
        c["nn_handler"] / c["lightning"],
        TARGET,
    )
    report.ratio("nn_handler/raw", w["nn_handler"] / w["raw"], c["nn_handler"] / c["raw"])
    report.ratio("lightning/raw", w["lightning"] / w["raw"], c["lightning"] / c["raw"])
    return report.finish()


if __name__ == "__main__":
    main()
