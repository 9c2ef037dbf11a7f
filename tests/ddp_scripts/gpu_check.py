"""Manual check on a CUDA machine: NCCL set-up and the DDP helpers' GPU paths (one GPU is enough).

Run: python tests/ddp_scripts/gpu_check.py
"""

from __future__ import annotations

import os
import socket

import torch

from nn_handler import parallelize_on_gpus


@parallelize_on_gpus()
def on_gpu(size, device):
    return {"device": str(device), "sum": torch.ones(size, device=device).sum()}


def main() -> None:
    print("parallelize_on_gpus:", on_gpu(5))
    import torch.distributed as dist
    from nn_handler.adapters.fit.strategy import strategy_arguments

    from nn_handler._env.dist_env import DistEnv
    from nn_handler._env.process_group import ensure_process_group
    from nn_handler.utils import aggregate_metrics, broadcast_data, on_rank

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    env = DistEnv(True, 0, 0, 1, "torchrun", 1, 1, 0)
    device = torch.device("cuda", 0)
    ensure_process_group(env, device, timeout=60)
    print("backend:", dist.get_backend(), "current device:", torch.cuda.current_device())
    print("aggregate_metrics:", aggregate_metrics({"a": 2.0, "b": torch.tensor(3.0)}))
    print("broadcast:", broadcast_data({"t": torch.arange(3, device=device)}))
    print("on_rank:", on_rank(0)(lambda: "ran")())
    try:
        on_rank(0)(lambda: 1 / 0)()
    except RuntimeError as err:
        print("on_rank error:", err)
    args = strategy_arguments(env, device, {"static_graph": True}, env={})
    print(
        "strategy:",
        {k: v for k, v in args.items() if k != "strategy"},
        args["strategy"]._process_group_backend,
        args["strategy"]._ddp_kwargs,
    )
    dist.destroy_process_group()
    print("GPU CHECK OK")


if __name__ == "__main__":
    main()
