"""``nn_handler_run``: ``torchrun`` with its node and process counts read from SLURM.

Run it once per node (``srun --ntasks-per-node=1 nn_handler_run train.py``, or by hand on each
machine); it starts the node's worker processes through ``torch.distributed.run``. Anything given
on the command line wins over what SLURM says:

===================  ============================================================================
option               default
===================  ============================================================================
``--nnodes``         ``SLURM_STEP_NUM_NODES``/``SLURM_NNODES``/``SLURM_JOB_NUM_NODES``, else 1
``--nproc-per-node`` ``SLURM_GPUS_PER_NODE``, ``SLURM_GPUS_ON_NODE``, the visible CUDA devices,
                     else 1 (one CPU process)
``--node-rank``      ``SLURM_NODEID``, else 0
``--rdzv-endpoint``  ``RDZV_ENDPOINT``; else ``MASTER_ADDR`` or the first host of the SLURM node
                     list, port ``MASTER_PORT`` or ``13000 + SLURM_JOB_ID % 20000``; else
                     ``$HOSTNAME:29500`` on node rank 0 of several nodes
``--rdzv-backend``   ``c10d``
``--rdzv-id``        ``SLURM_JOB_ID``, else ``nn_handler``
``--standalone``     used when there is one node and no endpoint, backend, nor SLURM
``--max-restarts``,  passed to torchrun when given
``--monitor-interval``,
``--tee``
``--torchrun-extra`` more torchrun arguments, as they are (``--torchrun-extra=--log-dir=logs``)
===================  ============================================================================
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from ._env.slurm_hosts import first_host

__all__ = ["first_host", "gpus_per_node", "torchrun_arguments", "main"]

_DEFAULT_PORT = 29500


def gpus_per_node(value: str) -> int:
    """GPUs in a SLURM GPU count: ``"4"``, ``"a100:4"``, ``"gpu:a100:2,gpu:v100:1"`` → 4, 4, 3."""
    total = 0
    for part in value.split(","):
        count = part.strip().rsplit(":", 1)[-1]
        if not count.isdigit():
            raise ValueError(f"Cannot read a GPU count from {value!r}.")
        total += int(count)
    return total


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nn_handler_run",
        description="torchrun with defaults from SLURM: run once per node.",
    )
    parser.add_argument("--nnodes", help="number of nodes (or MIN:MAX for elastic jobs)")
    parser.add_argument(
        "--nproc-per-node", "--nproc_per_node", dest="nproc_per_node",
        help="worker processes per node (an int, or torchrun's gpu/cpu/auto)",
    )  # fmt: skip
    parser.add_argument("--node-rank", "--node_rank", dest="node_rank", type=int)
    parser.add_argument(
        "--rdzv-endpoint", "--rdzv_endpoint", dest="rdzv_endpoint",
        help="HOST:PORT of the c10d rendezvous (on the first node)",
    )  # fmt: skip
    parser.add_argument("--rdzv-id", "--rdzv_id", dest="rdzv_id", help="the job's id")
    parser.add_argument(
        "--rdzv-backend", "--rdzv_backend", dest="rdzv_backend", default=None,
        help="torchrun's rendezvous backend (default: c10d)",
    )  # fmt: skip
    parser.add_argument(
        "--max-restarts", "--max_restarts", dest="max_restarts",
        help="restarts of the worker group before the launch fails (torchrun --max-restarts)",
    )  # fmt: skip
    parser.add_argument(
        "--monitor-interval", "--monitor_interval", dest="monitor_interval",
        help="seconds between checks of the workers (torchrun --monitor-interval)",
    )  # fmt: skip
    parser.add_argument(
        "--tee", choices=["0", "1", "2", "3"],
        help="copy the workers' output to the console: 1 stdout, 2 stderr, 3 both",
    )  # fmt: skip
    parser.add_argument(
        "--torchrun-extra", "--torchrun_extra", dest="torchrun_extra", nargs="*", default=[],
        help="more torchrun arguments, passed as they are; give one that starts with a dash as "
        "--torchrun-extra=--log-dir=logs",
    )  # fmt: skip
    parser.add_argument(
        "--standalone", action="store_true", help="one node, rendezvous on a free local port"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the torchrun arguments and exit"
    )
    parser.add_argument("script", help="the training script (or module with -m in its args)")
    parser.add_argument("script_args", nargs=argparse.REMAINDER, help="the script's arguments")
    return parser


def _first(env: Mapping[str, str], *keys: str) -> tuple[str, str] | tuple[None, None]:
    for key in keys:
        if env.get(key, "").strip():
            return env[key].strip(), key
    return None, None


def _processes(
    args: argparse.Namespace, env: Mapping[str, str], cuda_count: int | None
) -> tuple[str, str]:
    if args.nproc_per_node is not None:
        return args.nproc_per_node, "--nproc-per-node"
    value, key = _first(env, "SLURM_GPUS_PER_NODE", "SLURM_GPUS_ON_NODE")
    if value is not None:
        assert key is not None  # _first finds both or neither
        count = gpus_per_node(value)
        if count > 0:
            return str(count), key
    if cuda_count is None:
        import torch

        cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if cuda_count > 0:
        return str(cuda_count), "visible CUDA devices"
    return "1", "no GPU: one CPU process (use --nproc-per-node N for more)"


def _check_one_task_per_node(env: Mapping[str, str], nnodes: str) -> None:
    if "SLURM_STEP_ID" not in env or not nnodes.isdigit():
        return
    tasks, key = _first(env, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS")
    if tasks is not None and tasks.isdigit() and int(tasks) != int(nnodes):
        raise SystemExit(
            f"nn_handler_run: {key}={tasks} tasks on {nnodes} node(s). nn_handler_run starts the "
            "processes of a node itself: run one per node, `srun --ntasks-per-node=1 "
            "nn_handler_run ...` (torchrun then starts --nproc-per-node processes on each)."
        )


def _rendezvous(
    args: argparse.Namespace, env: Mapping[str, str], nnodes: str, node_rank: int
) -> tuple[list[str], str]:
    if args.standalone:
        if nnodes != "1":
            raise SystemExit(
                f"nn_handler_run: --standalone is for one node, not --nnodes {nnodes}."
            )
        return ["--standalone"], "standalone"
    job_id = env.get("SLURM_JOB_ID", "").strip()
    rdzv_id = args.rdzv_id or job_id or "nn_handler"
    backend = args.rdzv_backend or "c10d"
    endpoint = args.rdzv_endpoint or env.get("RDZV_ENDPOINT", "").strip() or None
    where = "--rdzv-endpoint" if args.rdzv_endpoint else "RDZV_ENDPOINT"
    if endpoint is None:
        endpoint, where = _default_endpoint(env, job_id)
    if endpoint is None:
        if nnodes == "1" and args.rdzv_backend is None:
            return ["--standalone"], "standalone"
        if node_rank != 0:
            raise SystemExit(
                f"nn_handler_run: node rank {node_rank} of {nnodes} outside SLURM does not know "
                "the first node's address: pass --rdzv-endpoint HOST:PORT (or set RDZV_ENDPOINT) "
                "with the first node's host and a free port, the same on every node."
            )
        endpoint = f"{env.get('HOSTNAME', '').strip() or 'localhost'}:{_DEFAULT_PORT}"
        where = "$HOSTNAME"
    rdzv = [f"--rdzv-backend={backend}", f"--rdzv-endpoint={endpoint}", f"--rdzv-id={rdzv_id}"]
    return rdzv, f"{backend} rendezvous at {endpoint} [{where}] (id {rdzv_id})"


def _default_endpoint(env: Mapping[str, str], job_id: str) -> tuple[str | None, str]:
    """``HOST:PORT`` from ``MASTER_ADDR``/``MASTER_PORT`` or the SLURM job, else ``None``."""
    nodelist, key = _first(env, "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST")
    host, where = env.get("MASTER_ADDR", "").strip(), "MASTER_ADDR"
    if not host and nodelist:
        host, where = first_host(nodelist), f"first host of {key}"
    if not host:
        return None, ""
    port = env.get("MASTER_PORT", "").strip()
    if not port:
        port = str(13000 + int(job_id) % 20000) if job_id.isdigit() else str(_DEFAULT_PORT)
    return f"{host}:{port}", where


def _extras(args: argparse.Namespace) -> list[str]:
    out = []
    for option in ("max_restarts", "monitor_interval", "tee"):
        value = getattr(args, option)
        if value is not None:
            out.append(f"--{option.replace('_', '-')}={value}")
    return out + list(args.torchrun_extra)


def torchrun_arguments(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    cuda_count: int | None = None,
) -> tuple[list[str], str]:
    """``(arguments for torch.distributed.run, one-line summary)`` for ``nn_handler_run argv``.

    ``env`` defaults to ``os.environ``; ``cuda_count`` to the visible CUDA devices.
    """
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return _plan(args, os.environ if env is None else env, cuda_count)


def _plan(
    args: argparse.Namespace, env: Mapping[str, str], cuda_count: int | None
) -> tuple[list[str], str]:
    nnodes, nodes_from = (args.nnodes, "--nnodes") if args.nnodes else (None, None)
    if nnodes is None:
        nnodes, nodes_from = _first(
            env, "SLURM_STEP_NUM_NODES", "SLURM_NNODES", "SLURM_JOB_NUM_NODES"
        )
    nnodes, nodes_from = (nnodes, nodes_from) if nnodes else ("1", "default")
    _check_one_task_per_node(env, nnodes)
    nproc, nproc_from = _processes(args, env, cuda_count)
    node_rank = args.node_rank
    if node_rank is None:
        node_rank = int(env["SLURM_NODEID"]) if env.get("SLURM_NODEID", "").isdigit() else 0
    rdzv, rdzv_text = _rendezvous(args, env, nnodes, node_rank)
    script_args = list(args.script_args)
    if script_args[:1] == ["--"]:  # `nn_handler_run train.py -- --lr 1`
        script_args = script_args[1:]
    out = [f"--nnodes={nnodes}", f"--nproc-per-node={nproc}", f"--node-rank={node_rank}"]
    out += rdzv + _extras(args) + [args.script, *script_args]
    summary = (
        f"nn_handler_run: {nnodes} node(s) [{nodes_from}] x {nproc} process(es) [{nproc_from}], "
        f"node rank {node_rank}, {rdzv_text}"
    )
    return out, summary


def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``nn_handler_run``: build torchrun's arguments and run it."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    arguments, summary = _plan(args, os.environ, None)
    print(summary, file=sys.stderr, flush=True)
    if args.dry_run:
        print("torchrun " + " ".join(arguments))
        return
    from torch.distributed.run import main as torchrun_main

    torchrun_main(arguments)


if __name__ == "__main__":
    main()
