"""Overhead benchmarks: nn_handler against a hand-written PyTorch loop and plain Lightning.

Run every job with ``python -m benchmarks.run`` (``--smoke`` for a seconds-long sanity run), or
one job with ``python -m benchmarks.bench_<job>``. Each job prints a small report whose ratios
(nn_handler/raw, nn_handler/lightning) are the result; absolute times are context only. See
``docs/performance.md`` for the method and the recorded numbers.
"""

JOBS = ("tiny", "mlp", "full_epoch", "fixed_cost", "checkpoint", "memory", "ddp", "gpu", "import")

__all__ = ["JOBS"]
