"""The environment for a child process that starts its own distributed job (torchrun, srun)."""

from __future__ import annotations

import os
import re
import sys

# A launcher's variables in the test process would leak into the job and confuse its ranks.
LAUNCHER_VARIABLES = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "GROUP_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
    "SLURM_PROCID",
    "SLURM_NTASKS",
)
# Lightning's ``seed_everything`` (which NNHandler's seeding uses) exports its seed for child
# processes, and a DDP run shuffles with that seed: a test that seeded in-process would change a
# job that never seeds (its hand-written DDP loop shuffles with seed 0) and make it depend on order.
SEED_VARIABLES = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")


def clean_env(drop_slurm: bool = False) -> dict[str, str]:
    """``os.environ`` without launcher variables and Lightning's exported seed (and without every
    ``SLURM_*`` if asked)."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in LAUNCHER_VARIABLES + SEED_VARIABLES
        and not (drop_slurm and k.startswith("SLURM_"))
    }


def torchrun(script, *args, nproc: int = 2) -> list[str]:
    """The command that runs ``script args`` in ``nproc`` local processes under torchrun."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(script),
        *map(str, args),
    ]


def job_output(proc, keep: int = 3000) -> str:
    """A failed job's output for an assertion message: each rank's exception, its first
    traceback and its end.

    The end alone shows only the launcher tearing down the other ranks; the cause is the failing
    rank's exception, somewhere in the middle.
    """
    text = (proc.stdout or "") + (proc.stderr or "")
    raised = [
        line
        for line in text.splitlines()
        if re.match(r"(\[rank\d+\]: )?[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", line)
    ]
    head = "exceptions raised:\n" + "\n".join(raised[:20]) + "\n\n" if raised else ""
    first = text.find("Traceback")
    if len(text) <= 2 * keep or first < 0 or first >= len(text) - keep:
        return head + text[-2 * keep :]
    return head + text[first : first + keep] + "\n[...]\n" + text[-keep:]
