"""Run benchmark jobs in sequence: ``python -m benchmarks.run [JOB ...] [--smoke] [--json PATH]``.

Jobs: tiny, mlp, full_epoch, fixed_cost, checkpoint, memory, ddp, gpu, import (default: all). Other
options (``--reps``, ``--epochs``) are passed to every job.
"""

from __future__ import annotations

import argparse
import importlib
import time
from typing import Any

from . import JOBS


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "jobs", nargs="*", metavar="JOB", help=f"jobs to run (default: all of {', '.join(JOBS)})"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the scripts")
    parser.add_argument("--json", metavar="PATH", help="append each job's results as JSON lines")
    parser.add_argument("--reps", type=int, help="timed repetitions per way (every job)")
    parser.add_argument("--epochs", type=int, help="epochs per run (the jobs that train)")
    args = parser.parse_args(argv)
    unknown = [job for job in args.jobs if job not in JOBS]
    if unknown:
        parser.error(f"unknown job(s) {', '.join(unknown)}; choose from {', '.join(JOBS)}")
    results = []
    for job in args.jobs or JOBS:
        job_argv = ["--smoke"] if args.smoke else []
        if args.json:
            job_argv += ["--json", args.json]
        if args.reps is not None:
            job_argv += ["--reps", str(args.reps)]
        if args.epochs is not None and job not in ("checkpoint", "fixed_cost"):
            job_argv += ["--epochs", str(args.epochs)]
        t = time.perf_counter()
        module = importlib.import_module(f"benchmarks.bench_{job}")
        results.append(module.main(job_argv))
        print(f"   ({job}: {time.perf_counter() - t:.0f} s)\n", flush=True)
    return results


if __name__ == "__main__":
    main()
