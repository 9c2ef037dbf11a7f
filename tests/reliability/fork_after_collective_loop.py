"""Fork right after gloo collectives, again and again, and count the children that never start.

Usage::

    python tests/reliability/fork_after_collective_loop.py [--forks 1500] [--busy 2] [--no-guard]

Two CPU ranks under torchrun each loop: ``all_gather_object`` (what a DataLoader's first fork
follows in a DDP run), then fork a child that only reports back. On CPython before 3.12 a child
forked while a gloo worker thread registers its Python thread state hangs before it runs any code
(gh-112275); nn_handler's fork guard (nn_handler/_env/fork_guard.py) waits for that moment to pass.
``--busy N`` adds N busy-looping processes, as a loaded machine. Prints each rank's count of hung
children; exits 1 if any hung. Measured here (2 cores, --busy 2, 1500 forks per rank, four runs
each, two with a first draft): 23 of 12000 children hung without the guard, none of 12000 with it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))


def _child(reply: multiprocessing.Queue, done: multiprocessing.synchronize.Event) -> None:
    reply.put(os.getpid())
    done.wait(60)


def rank_main(forks: int, guard: bool) -> None:
    import torch.distributed as dist

    if guard:
        import nn_handler  # noqa: F401 - installs the fork guard
    dist.init_process_group("gloo")
    ctx = multiprocessing.get_context("fork")
    hung = 0
    for i in range(forks):
        gathered: list = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, i)
        reply, done = ctx.Queue(), ctx.Event()
        child = ctx.Process(target=_child, args=(reply, done))
        child.start()
        try:
            reply.get(timeout=10)
        except queue.Empty:
            hung += 1
            child.kill()
        done.set()
        child.join()
    dist.barrier()
    print(f"rank {dist.get_rank()}: {hung} of {forks} children hung", flush=True)
    dist.destroy_process_group()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forks", type=int, default=1500)
    parser.add_argument("--busy", type=int, default=2)
    parser.add_argument("--no-guard", action="store_true")
    parser.add_argument("--rank", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank:
        rank_main(args.forks, guard=not args.no_guard)
        return 0
    from launch_env import clean_env, torchrun

    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        extra = ["--forks", str(args.forks), "--rank"] + (["--no-guard"] if args.no_guard else [])
        proc = subprocess.run(
            torchrun(Path(__file__), *extra), env=clean_env(), capture_output=True, text=True
        )
    finally:
        for p in busy:
            p.kill()
    counts = re.findall(r"rank (\d+): (\d+) of (\d+) children hung", proc.stdout)
    for rank, hung, forks in sorted(counts):
        print(f"rank {rank}: {hung} of {forks} children hung")
    if len(counts) != 2:
        print(proc.stdout[-2000:] + proc.stderr[-2000:])
    return 1 if proc.returncode or len(counts) != 2 or any(int(c[1]) for c in counts) else 0


if __name__ == "__main__":
    sys.exit(main())
