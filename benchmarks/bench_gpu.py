"""Job 8 — job 2 (MLP 784-512-512-10) at batch 512 on CUDA with ``use_amp=True``.

The three ways train with fp16 autocast and a GradScaler (raw: ``torch.autocast`` +
``torch.amp.GradScaler``; Lightning: ``precision="16-mixed"``; nn_handler: ``use_amp=True``).
The data sit on the GPU and the ``device`` loader gathers each batch there with a shuffled index
tensor (no host-to-device copy, no per-item collation), so the loader does not hide per-step host
work. Prints the GPU's name; without CUDA it prints a skip note and
exits 0.

``python -m benchmarks.bench_gpu [--reps N] [--epochs E] [--loader device|batched|items]``
"""

from __future__ import annotations

from typing import Any

import torch

from ._common import MLP_SIZES, Report, base_parser
from ._steps import add_step_arguments, run_steps


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = base_parser(__doc__.splitlines()[0], epochs=5)
    add_step_arguments(parser, batch=512, loader="device")
    parser.set_defaults(samples=65536)
    args = parser.parse_args(argv)
    if args.smoke:
        args.samples, args.reps, args.epochs = 2048, 1, 2
    if not torch.cuda.is_available():
        report = Report("gpu", "MLP 784-512-512-10, batch 512, CUDA, AMP", args.json)
        report.note("skipped: no CUDA device (torch.cuda.is_available() is False)")
        return report.finish()
    name = torch.cuda.get_device_name(0)
    print(f"GPU: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    data = run_steps("gpu", MLP_SIZES, args, None, device="cuda", amp=True)
    data["gpu"] = name
    return data


if __name__ == "__main__":
    main()
