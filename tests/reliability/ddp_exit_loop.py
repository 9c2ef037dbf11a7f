"""Run the DDP example under torchrun again and again and report every job's exit status.

Usage::

    python tests/reliability/ddp_exit_loop.py [--runs 20] [--epochs 5] [--json OUT.json]

Each run is ``python -m torch.distributed.run --standalone --nproc_per_node=2
examples/ddp_torchrun.py`` in a fresh temporary directory, with no launcher variables inherited.
A correct job must exit 0 every time; the script prints one line per run, a summary, and exits 1
if any run did not exit 0 (or timed out). Runs whose output shows a rank killed by a signal
(e.g. SIGABRT, "terminate called without an active exception") are reported as such.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ddp_torchrun.py"
sys.path.insert(0, str(ROOT / "tests"))

from launch_env import clean_env, torchrun  # noqa: E402

_SIGNALLED = re.compile(r"exitcode\s*:\s*(-\d+)")


def run_once(epochs: int, timeout_s: float, nproc: int = 2) -> dict:
    """One torchrun job of the example: exit code, seconds, and any rank killed by a signal."""
    env = clean_env()
    env.setdefault("OMP_NUM_THREADS", "1")
    command = torchrun(EXAMPLE, "--epochs", epochs, nproc=nproc)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ddp_exit_") as cwd:
        try:
            proc = subprocess.run(
                command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired as err:
            tail = err.stdout or ""
            tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
            return {
                "code": None,
                "seconds": round(time.monotonic() - start, 2),
                "signals": [],
                "terminate_called": False,
                "tail": tail[-2000:],
            }
    output = proc.stdout + proc.stderr
    return {
        "code": proc.returncode,
        "seconds": round(time.monotonic() - start, 2),
        "signals": sorted({int(s) for s in _SIGNALLED.findall(output)}),
        "terminate_called": "terminate called" in output,
        "tail": output[-2000:] if proc.returncode != 0 else "",
        "output": output,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5, help="epochs per job (the example's own)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per job")
    parser.add_argument("--json", default=None, help="write every run's result here")
    parser.add_argument("--logs", default=None, help="write each failed run's output here")
    args = parser.parse_args(argv)

    results = []
    for i in range(1, args.runs + 1):
        result = run_once(args.epochs, args.timeout)
        output = result.pop("output", "")
        results.append(result)
        if args.logs and result["code"] != 0:
            Path(args.logs).mkdir(parents=True, exist_ok=True)
            (Path(args.logs) / f"run{i:03d}.txt").write_text(output)
        extra = f" signals {result['signals']}" if result["signals"] else ""
        print(f"run {i:3d}: exit {result['code']} in {result['seconds']:.1f} s{extra}", flush=True)
    codes = Counter(str(r["code"]) for r in results)
    failed = [r for r in results if r["code"] != 0]
    print(f"{len(results)} runs: exit codes {dict(codes)}; {len(failed)} not 0")
    for r in failed[:3]:
        print("---- a failed run's output (tail) ----\n" + r["tail"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
