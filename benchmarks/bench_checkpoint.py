"""Job 5 — ``handler.save``/``NNHandler.load`` of a ~50M-parameter model with Adam state.

Target: <= 1.3x ``torch.save``/``torch.load`` of the same state dicts. The baseline save writes
atomically too (temp file, fsync, rename); the baseline load rebuilds the model and the Adam
optimizer and loads both state dicts, as ``NNHandler.load`` does. Both read and write the same
directory, alternately, so the page cache treats them alike.

``python -m benchmarks.bench_checkpoint [--reps N] [--width W]``
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import statistics
import tempfile
import time
from typing import Any

import torch
import torch.nn.functional as F

from ._common import MLP, Report, atomic_torch_save, base_parser, bench_env

TARGET = 1.3


def sizes_for(width: int) -> list[int]:
    """Three ``width x width`` layers and a 10-way head (width 4096: 50.4M parameters)."""
    return [width, width, width, width, 10]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = base_parser(__doc__.splitlines()[0], reps=3)
    parser.add_argument("--width", type=int, default=4096, help="hidden width (4096: ~50M params)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.reps, args.width = 1, 64
    with bench_env():
        return _run(args)


def _run(args: Any) -> dict[str, Any]:
    sizes = sizes_for(args.width)
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    report = Report(
        "checkpoint",
        f"MLP {'-'.join(map(str, sizes))} ({n_params / 1e6:.1f}M "
        "parameters) with Adam state: save and load",
        args.json,
    )
    if importlib.util.find_spec("nn_handler.checkpoint") is None:
        report.note("skipped: nn_handler.checkpoint is not importable yet")
        return report.finish()
    from nn_handler import NNHandler

    torch.manual_seed(0)
    handler = NNHandler(MLP, sizes=sizes)
    handler.set_optimizer(torch.optim.Adam, lr=1e-3)
    handler.set_loss_fn(F.cross_entropy)
    x, y = torch.randn(8, sizes[0]), torch.randint(0, 10, (8,))
    handler.optimizer.zero_grad()
    F.cross_entropy(handler.model(x), y).backward()
    handler.optimizer.step()  # Adam now holds exp_avg and exp_avg_sq for every parameter

    workdir = tempfile.mkdtemp(prefix="bench_ckpt_")
    raw_path, nn_path = os.path.join(workdir, "raw.pth"), os.path.join(workdir, "nn.pth")

    def raw_save() -> float:
        t = time.perf_counter()
        atomic_torch_save(
            {
                "model_state_dict": handler.module.state_dict(),
                "optimizer_state_dict": handler.optimizer.state_dict(),
            },
            raw_path,
        )
        return time.perf_counter() - t

    def nn_save() -> float:
        t = time.perf_counter()
        handler.save(nn_path)
        return time.perf_counter() - t

    def raw_load() -> float:
        t = time.perf_counter()
        state = torch.load(raw_path, weights_only=True)
        model = MLP(sizes)
        model.load_state_dict(state["model_state_dict"])
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        opt.load_state_dict(state["optimizer_state_dict"])
        return time.perf_counter() - t

    def nn_load() -> float:
        t = time.perf_counter()
        NNHandler.load(nn_path)
        return time.perf_counter() - t

    try:
        times: dict[str, list[float]] = {
            k: [] for k in ("raw save", "nn_handler save", "raw load", "nn_handler load")
        }
        raw_save(), nn_save()  # warm-up (and the files the loads read)
        for r in range(args.reps):
            saves = [("raw save", raw_save), ("nn_handler save", nn_save)]
            loads = [("raw load", raw_load), ("nn_handler load", nn_load)]
            for name, fn in saves if r % 2 == 0 else saves[::-1]:
                times[name].append(fn())
            for name, fn in loads if r % 2 == 0 else loads[::-1]:
                times[name].append(fn())
        med = {k: statistics.median(v) for k, v in times.items()}
        for name, v in times.items():
            report.value(name, med[name], f"s (min {min(v):.3f}, n={len(v)})")
        report.value("raw file size", os.path.getsize(raw_path) / 2**20, "MiB")
        report.value("nn_handler file size", os.path.getsize(nn_path) / 2**20, "MiB")
        report.ratio("save nn_handler/raw", med["nn_handler save"] / med["raw save"], target=TARGET)
        report.ratio("load nn_handler/raw", med["nn_handler load"] / med["raw load"], target=TARGET)
        return report.finish()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
