"""Job 6 — peak resident memory of job 2 (MLP 784-512-512-10) under nn_handler vs plain Lightning.

Each way trains in its own fresh interpreter (``--child WAY``) and reports its peak resident set
(``VmHWM``, see :func:`peak_rss_mib`); the ways alternate. Target: nn_handler <= 1.10x
plain Lightning. Every child imports the same benchmark module (torch and lightning included), so
the raw loop's figure is the floor of the process, not of torch alone.

``python -m benchmarks.bench_memory [--reps N] [--epochs E]``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
from typing import Any

from ._common import MLP_SIZES, WAYS, Report, base_parser, bench_env, child_env

TARGET = 1.10


def child(way: str, samples: int, epochs: int) -> None:
    """Train one way once and print ``{"way": ..., "maxrss_mib": ...}``."""
    import torch
    from torch.utils.data import DataLoader

    from ._common import (
        MLP,
        LitClassifier,
        make_handler,
        plain_trainer,
        raw_train,
        synthetic,
    )

    ds = synthetic(samples, MLP_SIZES[0], MLP_SIZES[-1])
    kw = {"batch_size": 64, "shuffle": True}
    torch.manual_seed(0)
    if way == "raw":
        model = MLP(MLP_SIZES)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        raw_train(model, opt, DataLoader(ds, **kw), epochs)
    elif way == "lightning":
        plain_trainer(epochs, []).fit(LitClassifier(MLP_SIZES), DataLoader(ds, **kw))
    else:
        make_handler(MLP_SIZES, ds, kw).train(epochs, progress_bar=False)
    print(json.dumps({"way": way, "maxrss_mib": peak_rss_mib()}))


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB.

    Linux's ``ru_maxrss`` survives ``fork`` + ``exec``: a child started by a large parent reports
    at least the parent's size. ``VmHWM`` belongs to the process's own address space, which
    ``exec`` replaces, so it is used where it exists; ``getrusage`` (KiB on Linux) otherwise.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(way: str, samples: int, epochs: int) -> float:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_memory",
            "--child",
            way,
            "--samples",
            str(samples),
            "--epochs",
            str(epochs),
        ],
        capture_output=True,
        text=True,
        env=child_env(),
    )
    if out.returncode != 0:
        raise RuntimeError(f"the {way} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["maxrss_mib"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = base_parser(__doc__.splitlines()[0], reps=3, epochs=2)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--child", choices=WAYS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        with bench_env():
            child(args.child, args.samples, args.epochs)
        return {}
    if args.smoke:
        args.reps, args.samples, args.epochs = 1, 256, 1
    report = Report(
        "memory",
        f"peak RSS of MLP {'-'.join(map(str, MLP_SIZES))}, batch 64, "
        f"{args.samples} samples, {args.epochs} epoch(s), one fresh process per run",
        args.json,
    )
    rss: dict[str, list[float]] = {way: [] for way in WAYS}
    for r in range(args.reps):
        k = r % len(WAYS)
        for way in WAYS[k:] + WAYS[:k]:
            rss[way].append(_measure(way, args.samples, args.epochs))
    med = {way: statistics.median(v) for way, v in rss.items()}
    for way, v in rss.items():
        report.value(f"maxrss {way}", med[way], f"MiB (min {min(v):.1f}, n={len(v)})")
    report.ratio(
        "nn_handler/lightning", med["nn_handler"] / med["lightning"], target=TARGET, label="rss"
    )
    report.ratio("nn_handler/raw", med["nn_handler"] / med["raw"], label="rss")
    return report.finish()


if __name__ == "__main__":
    main()
