"""Job 8 — job 2 (MLP 784-512-512-10) at batch 512 on CUDA with ``use_amp=True``.

The three ways train with fp16 autocast and a GradScaler (raw: ``torch.autocast`` +
``torch.amp.GradScaler``; Lightning: ``precision="16-mixed"``; nn_handler: ``use_amp=True``).
The data sit on the GPU and the ``device`` loader gathers each batch there with a shuffled index
tensor (no host-to-device copy, no per-item collation), so the loader does not hide per-step host
work. Prints the GPU's name; without CUDA it prints a skip note and exits 0 (so that
``python -m benchmarks.run`` runs everywhere).

``--device-check`` is the one command for a lent GPU: the job with K = auto and K = 1
(``nn_handler_k1``), then the CUDA-only tests (:data:`CUDA_TESTS`, with pytest) and the manual
NCCL check (:data:`GPU_SCRIPT`); it exits non-zero when a test fails, and at once, with the
reason, when there is no CUDA device.

``python -m benchmarks.bench_gpu [--reps N] [--epochs E] [--loader device|batched|items]``
``python -m benchmarks.bench_gpu --device-check``
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import torch

from ._common import MLP_SIZES, ROOT, Report, base_parser, child_env
from ._steps import add_step_arguments, run_steps

#: The tests that skip without CUDA (pytest node ids, relative to the repository root).
CUDA_TESTS = (
    "tests/test_checkpoint_cuda.py",
    "tests/test_callbacks_builtins.py::test_builtins_on_cuda",
)
#: NCCL process group, DDP helpers and strategy arguments on one GPU (prints GPU CHECK OK).
GPU_SCRIPT = "tests/ddp_scripts/gpu_check.py"
TITLE = "MLP 784-512-512-10, batch 512, CUDA, AMP"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = base_parser(__doc__.splitlines()[0], epochs=5)
    add_step_arguments(parser, batch=512, loader="device")
    parser.add_argument(
        "--device-check",
        action="store_true",
        help="the benchmark with K = auto and K = 1, then the CUDA-only tests (needs CUDA)",
    )
    parser.add_argument(
        "--test-timeout", type=float, default=1200, help="seconds for the CUDA tests"
    )
    parser.set_defaults(samples=65536)
    args = parser.parse_args(argv)
    if args.smoke:
        args.samples, args.reps, args.epochs = 2048, 1, 2
    if not torch.cuda.is_available():
        if args.device_check:
            print(
                "bench_gpu --device-check needs a CUDA device: torch.cuda.is_available() is "
                f"False (torch {torch.__version__}, CUDA build {torch.version.cuda}). Run it on "
                "the GPU machine.",
                file=sys.stderr,
            )
            raise SystemExit(2)
        report = Report("gpu", TITLE, args.json)
        report.note("skipped: no CUDA device (torch.cuda.is_available() is False)")
        return report.finish()
    name = torch.cuda.get_device_name(0)
    print(f"GPU: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    if args.device_check:
        args.also_k1 = True
    data = run_steps("gpu", MLP_SIZES, args, None, device="cuda", amp=True)
    data["gpu"] = name
    if args.device_check:
        data["tests"] = run_cuda_tests(args.test_timeout)
        if any(code != 0 for code in data["tests"].values()):
            raise SystemExit(f"CUDA checks failed: {data['tests']}")
    return data


def cuda_test_commands() -> dict[str, list[str]]:
    """``label -> command`` for the CUDA-only tests and the GPU check script."""
    pytest = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"]
    return {"pytest": pytest + list(CUDA_TESTS), "gpu_check": [sys.executable, GPU_SCRIPT]}


def run_cuda_tests(timeout: float) -> dict[str, int]:
    """Run :func:`cuda_test_commands` from the repository root; ``label -> exit status``."""
    codes = {}
    for label, cmd in cuda_test_commands().items():
        print(f"== {label}: {' '.join(cmd[1:])}", flush=True)
        try:
            done = subprocess.run(cmd, cwd=ROOT, env=child_env(), timeout=timeout)
            codes[label] = done.returncode
        except subprocess.TimeoutExpired:
            print(f"   {label} timed out after {timeout:g} s", flush=True)
            codes[label] = -1
        print(f"   {label}: exit status {codes[label]}", flush=True)
    return codes


if __name__ == "__main__":
    main()
