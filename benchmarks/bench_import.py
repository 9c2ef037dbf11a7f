"""Job 9 — start-up: ``import nn_handler`` and ``nn-handler --help`` in fresh interpreters.

Each command runs in a new interpreter ``--reps`` times, in a rotating order; a command's value
is the median of its runs, as wall time and as the child's CPU time (user + system, which a
loaded machine inflates less). The interpreter's own start-up (``python -c pass``) is included
everywhere and reported alone. Targets: ``import nn_handler`` <= 1 s, ``nn-handler --help``
<= 2 s. ``import torch`` is the floor of anything that needs torch: the ratios to it show what
the package adds. ``nn-handler fit --help`` lists the Trainer's options, so it imports Lightning
(itself importing torchmetrics, scipy and matplotlib): context only, against ``import lightning``.

``python -m benchmarks.bench_import [--reps N]``
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from typing import Any

from ._common import Report, base_parser, child_env

IMPORT_TARGET_S = 1.0
HELP_TARGET_S = 2.0

COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "import torch": ["-c", "import torch"],
    "import nn_handler": ["-c", "import nn_handler"],
    "from nn_handler import NNHandler": ["-c", "from nn_handler import NNHandler"],
    "import lightning": ["-c", "import lightning"],
    "nn-handler --help": ["-m", "nn_handler", "--help"],
    "nn-handler fit --help": ["-m", "nn_handler", "fit", "--help"],
}


def run_once(arguments: list[str]) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of ``python <arguments>`` in a fresh interpreter."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *arguments],
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def measure(names: list[str], reps: int) -> dict[str, dict[str, float]]:
    """``name -> {"wall", "cpu"}`` medians over ``reps`` rounds in a rotating order."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_ in range(reps):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(run_once(COMMANDS[name]))
    return {
        name: {
            "wall": statistics.median(w for w, _ in runs),
            "cpu": statistics.median(c for _, c in runs),
        }
        for name, runs in samples.items()
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = base_parser(__doc__.splitlines()[0], reps=7, epochs=0)
    args = parser.parse_args(argv)
    reps = 1 if args.smoke else args.reps
    report = Report("import", f"fresh interpreters, median of {reps}", args.json)
    names = list(COMMANDS)
    if args.smoke:  # the Lightning-importing commands are the slow ones
        names = [n for n in names if n not in ("import lightning", "nn-handler fit --help")]
    medians = measure(names, reps)
    targets = {"import nn_handler": IMPORT_TARGET_S, "nn-handler --help": HELP_TARGET_S}
    for name in names:
        for clock in ("wall", "cpu"):
            report.value(f"{name} {clock}", medians[name][clock], "s", targets.get(name))
    torch_ = medians["import torch"]
    for name in ("import nn_handler", "from nn_handler import NNHandler", "nn-handler --help"):
        m = medians[name]
        report.ratio(f"{name} / import torch", m["wall"] / torch_["wall"], m["cpu"] / torch_["cpu"])
    handler = medians["from nn_handler import NNHandler"]
    report.value("NNHandler beyond torch wall", handler["wall"] - torch_["wall"], "s")
    report.value("NNHandler beyond torch cpu", handler["cpu"] - torch_["cpu"], "s")
    if "nn-handler fit --help" in medians:
        fit, lightning = medians["nn-handler fit --help"], medians["import lightning"]
        report.ratio(
            "fit --help / import lightning",
            fit["wall"] / lightning["wall"],
            fit["cpu"] / lightning["cpu"],
        )
    return report.finish()


if __name__ == "__main__":
    main()
