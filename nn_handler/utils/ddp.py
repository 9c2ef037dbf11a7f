"""DDP helpers for user scripts: set-up, rank-restricted calls, reductions and broadcasts.

All helpers also work in a single process (nothing to communicate), so one script runs the same
with and without a launcher.
"""

from __future__ import annotations

import functools
import importlib
import numbers
import pickle
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from .._devices import resolve_device as _resolve_device  # noqa: F401 - the original's name
from .._devices import to_cpu

__all__ = [
    "initialize_ddp",
    "on_rank",
    "parallelize_on_gpus",
    "aggregate_loss",
    "aggregate_metrics",
    "broadcast_data",
    "broadcast_if_ddp",
]


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def _comm_device(device: torch.device | str | None = None) -> torch.device:
    """Where collective tensors live: the current GPU for NCCL, else the CPU (or ``device``)."""
    if device is not None:
        return torch.device(device)
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def initialize_ddp(
    timeout: float | timedelta | None = None,
) -> tuple[bool, int, int, int, torch.device] | None:
    """Join the distributed job this process was launched in (torchrun or SLURM's srun).

    Creates the default process group (gloo on CPU, nccl on CUDA), as ``NNHandler`` does at
    construction. ``timeout`` (seconds or timedelta) bounds how long a collective waits for the
    other ranks; default $NN_HANDLER_DDP_TIMEOUT or 30 minutes.

    Returns:
        ``None`` when a process group already exists (e.g. an ``NNHandler`` made it; read
        ``handler._rank`` etc., or call :func:`_initialize_distributed`, which always returns
        the tuple). Otherwise ``(distributed, rank, local_rank, world_size, device)``; ``device``
        is ``cuda:<local_rank>`` when CUDA is available, else the CPU. Outside a launcher:
        ``(False, 0, 0, 1, device)``.
    """
    from nn_handler.adapters.strategy import collective_timeout

    collective_timeout(timeout)  # validate before anything else
    if _initialized():
        return None
    return _initialize_distributed(timeout)


def _initialize_distributed(
    timeout: float | timedelta | None = None,
) -> tuple[bool, int, int, int, torch.device]:
    """:func:`initialize_ddp`, but the tuple also when the process group already exists."""
    from nn_handler._dist_env import detect_distributed
    from nn_handler.adapters.strategy import ensure_process_group

    env = detect_distributed(None)
    device = _pick_device(env.local_rank if env.distributed else 0)
    ensure_process_group(env, device, timeout)
    return env.distributed, env.rank, env.local_rank, env.world_size, device


def _pick_device(local_rank: int) -> torch.device:
    """``cuda:<local_rank>`` (modulo the visible GPUs) when CUDA is available, else the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def _is_env_distributed() -> bool:
    """Whether torchrun's or SLURM's variables describe a job of more than one process."""
    from nn_handler._dist_env import detect_distributed

    return detect_distributed(None).distributed


def _should_use_distributed(use_distributed_flag: bool | None) -> bool:
    """Whether to run under DDP: ``False`` never, ``None`` when the environment is distributed,
    ``True`` likewise (with a warning when it is not; ``NNHandler(use_distributed=True)``
    raises instead)."""
    from nn_handler._dist_env import detect_distributed

    if use_distributed_flag is not None and not isinstance(use_distributed_flag, bool):
        raise TypeError(
            f"use_distributed_flag must be True, False or None, got {use_distributed_flag!r}."
        )
    if use_distributed_flag is False:
        return False
    found = detect_distributed(None).distributed
    if use_distributed_flag and not found:
        warnings.warn(
            "DDP was requested but this process is not part of a job of more than one process "
            "(no RANK/WORLD_SIZE from torchrun, nor an srun step); running without DDP.",
            RuntimeWarning,
            stacklevel=2,
        )
    return found


def _first_host_from_slurm_nodelist(nodelist: str) -> str:
    """The first host of a SLURM node list (``"node[003-005,9]"`` → ``"node003"``)."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    return SLURMEnvironment.resolve_root_node_address(nodelist)


def _rank_set(rank_or_ranks: int | Iterable[int]) -> frozenset[int]:
    single = isinstance(rank_or_ranks, numbers.Integral)
    items = [rank_or_ranks] if single else rank_or_ranks
    if (
        isinstance(items, (str, bytes))
        or not isinstance(items, Iterable)
        or any(isinstance(r, bool) or not isinstance(r, numbers.Integral) for r in items)
    ):
        raise TypeError(f"on_rank expects a rank (int) or a list of ranks, got {rank_or_ranks!r}.")
    ranks = frozenset(int(r) for r in items)
    if not ranks or min(ranks) < 0:
        raise ValueError(f"on_rank expects non-negative int ranks, got {rank_or_ranks!r}.")
    return ranks


def on_rank(rank_or_ranks: int | Iterable[int], barrier: bool = False) -> Callable:
    """Decorator: run the function only on the given rank(s); ``None`` is returned elsewhere.

    Every rank must call the decorated function. Each call ends with one small collective
    through which all ranks learn whether a target rank raised; if one did, every rank raises
    ``RuntimeError`` (naming the rank and the error) instead of the others hanging at their next
    collective. That exchange already makes all ranks leave the call together; ``barrier=True``
    additionally makes the target ranks start only once every rank has arrived. Without a
    process group the function runs when rank 0 is a target.
    """
    targets = _rank_set(rank_or_ranks)

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not _initialized():
                return func(*args, **kwargs) if 0 in targets else None
            rank = dist.get_rank()
            if barrier:
                dist.barrier()
            result, error, failure = None, None, None
            if rank in targets:
                try:
                    result = func(*args, **kwargs)
                except Exception as err:  # noqa: BLE001 - re-raised on every rank below
                    error = err
                    failure = f"{type(err).__name__}: {err}"
            reports: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(reports, failure)
            failed = [(r, msg) for r, msg in enumerate(reports) if msg is not None]
            if failed:
                where = "; ".join(f"rank {r}: {msg}" for r, msg in failed)
                raise RuntimeError(f"{func.__qualname__} failed on {where}") from error
            return result

        return wrapper

    return decorator


# ------------------------------------------------------------------ parallelize_on_gpus


def _resolve(ref: tuple[str, str] | bytes) -> Callable:
    """The user's function in a worker: by import path (unwrapping our decorator) or pickled."""
    if isinstance(ref, bytes):
        return pickle.loads(ref)
    module, qualname = ref
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    while getattr(obj, "_nn_handler_parallel", False):
        obj = obj.__wrapped__
    return obj


def _gpu_worker(ref, args, kwargs, index: int, pass_device: bool) -> Any:
    device = torch.device("cuda", index)
    torch.cuda.set_device(device)
    func = _resolve(ref)
    try:
        result = func(*args, device=device, **kwargs) if pass_device else func(*args, **kwargs)
        torch.cuda.synchronize(device)
        return to_cpu(result)
    except Exception as err:  # noqa: BLE001 - shipped to the parent as text with the traceback
        raise RuntimeError(f"{type(err).__name__}: {err}\n{traceback.format_exc()}") from None


def _reference(func: Callable) -> tuple[str, str] | bytes:
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if module and "<" not in qualname:
        # Spawned workers import the parent's main script as __main__ too (guarded by
        # `if __name__ == "__main__":`), so script-level functions resolve by name as well.
        return module, qualname
    try:
        return pickle.dumps(func)
    except Exception as err:  # noqa: BLE001 - pickling errors come in many types
        raise TypeError(
            f"parallelize_on_gpus needs a function the worker processes can import: define "
            f"{qualname or func!r} at module level in an importable module ({err})."
        ) from err


def parallelize_on_gpus(num_gpus: int | None = None, pass_device: bool = True) -> Callable:
    """Decorator: call the function once per GPU, each in its own process; results in GPU order.

    With ``pass_device`` the function receives ``device=torch.device("cuda", i)``. Results come
    back on the CPU. Errors in any worker raise ``RuntimeError`` naming the GPU. On a machine
    without CUDA the function runs once, in this process, on the CPU (``device=cpu``), and the
    list has one result. ``num_gpus=None`` uses every visible GPU.
    """
    if num_gpus is not None and (
        isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 1
    ):
        raise ValueError(f"num_gpus must be a positive int or None, got {num_gpus!r}.")

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> list[Any]:
            available = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if available == 0:
                if num_gpus is not None:
                    warnings.warn(
                        f"parallelize_on_gpus(num_gpus={num_gpus}): CUDA is not available, so "
                        f"{func.__qualname__} runs once on the CPU.",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                device = torch.device("cpu")
                out = func(*args, device=device, **kwargs) if pass_device else func(*args, **kwargs)
                return [out]
            count = available if num_gpus is None else num_gpus
            if count > available:
                raise ValueError(f"num_gpus={count} but only {available} GPU(s) are visible.")
            ref = _reference(func)
            import multiprocessing

            context = multiprocessing.get_context("spawn")  # CUDA cannot be used after fork
            with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
                futures = [
                    pool.submit(_gpu_worker, ref, args, kwargs, i, pass_device)
                    for i in range(count)
                ]
                results, errors = [], []
                for i, future in enumerate(futures):
                    try:
                        results.append(future.result())
                    except Exception as err:  # noqa: BLE001 - collected, raised together
                        errors.append(f"GPU {i}: {err}")
            if errors:
                raise RuntimeError(
                    f"{func.__qualname__} failed on {len(errors)} of {count} GPU(s):\n"
                    + "\n".join(errors)
                )
            return results

        wrapper._nn_handler_parallel = True  # type: ignore[attr-defined]
        return wrapper

    return decorator


# -------------------------------------------------------------- reductions / broadcasts
def _number(name: str, value: Any) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{name} must be a scalar, got a tensor of shape {tuple(value.shape)}."
            )
        return float(value.detach())
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number or a scalar tensor, got {type(value).__name__}.")
    return float(value)


def _world(world_size: int | None) -> int:
    world = dist.get_world_size() if world_size is None else world_size
    if isinstance(world, bool) or not isinstance(world, int) or world < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}.")
    return world


def aggregate_loss(
    loss: Any, world_size: int | None = None, device: torch.device | str | None = None
) -> float:
    """The mean of ``loss`` over all ranks (``loss`` itself without a process group).

    ``world_size`` defaults to the process group's size; ``device`` is where the collective's
    tensor lives (default: the current GPU under NCCL, else the CPU).
    """
    return aggregate_metrics({"loss": loss}, world_size, device)["loss"]


def aggregate_metrics(
    metrics: Mapping[str, Any],
    world_size: int | None = None,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Each value's mean over all ranks, with one collective (plain floats without DDP).

    Every rank must pass the same keys.
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a dict of numbers, got {type(metrics).__name__}.")
    names = list(metrics)
    values = [_number(f"metrics[{k!r}]", metrics[k]) for k in names]
    if not _initialized() or not names:
        return dict(zip(names, values))
    world = _world(world_size)
    packed = torch.tensor(values, dtype=torch.float64, device=_comm_device(device))
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    return dict(zip(names, (packed / world).tolist()))


def broadcast_data(data: Any, src: int = 0) -> Any:
    """``data`` as rank ``src`` has it, on every rank (any picklable object).

    Tensors travel through the CPU and arrive on the CPU. Raises ``RuntimeError`` without a
    process group; use :func:`broadcast_if_ddp` for code that also runs in one process.
    """
    if not _initialized():
        raise RuntimeError(
            "broadcast_data needs a process group (initialize_ddp() or an NNHandler under "
            "torchrun/srun); use broadcast_if_ddp(data) in code that may run in one process."
        )
    if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < dist.get_world_size():
        raise ValueError(f"src must be a rank in [0, {dist.get_world_size()}), got {src!r}.")
    box = [to_cpu(data) if dist.get_rank() == src else None]
    dist.broadcast_object_list(box, src=src, device=_comm_device())
    return box[0]


def broadcast_if_ddp(data: Any, src: int = 0) -> Any:
    """:func:`broadcast_data` under DDP; ``data`` unchanged in a single process."""
    return broadcast_data(data, src) if _initialized() else data
