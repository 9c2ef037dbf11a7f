"""DDP helpers for user scripts: set-up, rank-restricted and per-device calls, reductions.

All helpers also work in a single process (nothing to communicate), so one script runs the same
with and without a launcher.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import numbers
import pickle
import traceback
import weakref
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from .._env.devices import resolve_device as _resolve_device  # noqa: F401 - the original's name
from .._env.devices import to_cpu
from .._env.dist_env import detect_distributed
from .._env.process_group import collective_timeout, ensure_process_group
from .._env.slurm_hosts import first_host
from .._env.user_warnings import warn_user

__all__ = [
    "initialize_ddp",
    "on_rank",
    "parallelize_on_gpus",
    "parallel_on_all_devices",
    "ParallelExecutor",
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
    collective_timeout(timeout)  # validate before anything else
    if _initialized():
        return None
    return _initialize_distributed(timeout)


def _initialize_distributed(
    timeout: float | timedelta | None = None,
) -> tuple[bool, int, int, int, torch.device]:
    """:func:`initialize_ddp`, but the tuple also when the process group already exists."""
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
    return detect_distributed(None).distributed


def _should_use_distributed(use_distributed_flag: bool | None) -> bool:
    """Whether to run under DDP: ``False`` never, ``None`` when the environment is distributed,
    ``True`` likewise (with a warning when it is not; ``NNHandler(use_distributed=True)``
    raises instead)."""
    if use_distributed_flag is not None and not isinstance(use_distributed_flag, bool):
        raise TypeError(
            f"use_distributed_flag must be True, False or None, got {use_distributed_flag!r}."
        )
    if use_distributed_flag is False:
        return False
    found = detect_distributed(None).distributed
    if use_distributed_flag and not found:
        warn_user(
            "DDP was requested but this process is not part of a job of more than one process "
            "(no RANK/WORLD_SIZE from torchrun, nor an srun step); running without DDP.",
            RuntimeWarning,
        )
    return found


def _first_host_from_slurm_nodelist(nodelist: str) -> str:
    """The first host of a SLURM node list (``"node[003-005,9]"`` → ``"node003"``)."""
    return first_host(nodelist)


def _rank_set(rank_or_ranks: int | Iterable[int]) -> frozenset[int]:
    single = isinstance(rank_or_ranks, numbers.Integral)
    items: Any = [rank_or_ranks] if single else rank_or_ranks  # checked below
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

#: ``wrapper -> function`` for every :func:`parallelize_on_gpus` wrapper made in this process: a
#: worker that imports the decorated name finds the function to run (not the wrapper, which would
#: spawn workers again). Filled again in each worker when its import runs the decorator.
_PARALLEL_WRAPPERS: weakref.WeakKeyDictionary[Callable, Callable] = weakref.WeakKeyDictionary()


def _resolve(ref: tuple[str, str] | bytes) -> Callable:
    """The user's function in a worker: by import path (unwrapping our decorator) or pickled."""
    if isinstance(ref, bytes):
        return pickle.loads(ref)
    module, qualname = ref
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    while obj in _PARALLEL_WRAPPERS:
        obj = _PARALLEL_WRAPPERS[obj]
    return obj


def _call_with_device(func: Callable, args: tuple, kwargs: dict, device: torch.device) -> Any:
    """``func(*args, device=device, **kwargs)``, or with ``device`` put in its positional place
    when ``func`` takes it before arguments that ``args`` fill (``def f(device, data)``)."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return func(*args, device=device, **kwargs)
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in params if p.kind in kinds]
    if "device" in names:
        i = names.index("device")
        positional_only = params[i].kind is inspect.Parameter.POSITIONAL_ONLY
        if i < len(args) or (positional_only and i == len(args)):
            return func(*args[:i], device, *args[i:], **kwargs)
    return func(*args, device=device, **kwargs)


def _device_call(
    func: Callable, args: tuple, kwargs: dict, device: torch.device, pass_device: bool
) -> Any:
    return _call_with_device(func, args, kwargs, device) if pass_device else func(*args, **kwargs)


def _device_worker(
    ref: tuple[str, str] | bytes, args: tuple, kwargs: dict, device: str, pass_device: bool
) -> Any:
    target = torch.device(device)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    func = _resolve(ref)
    try:
        result = _device_call(func, args, kwargs, target, pass_device)
        if target.type == "cuda":
            torch.cuda.synchronize(target)
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


def _check_num_gpus(num_gpus: Any) -> None:
    if num_gpus is not None and (
        isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 1
    ):
        raise ValueError(f"num_gpus must be a positive int or None, got {num_gpus!r}.")


def _target_devices(num_gpus: int | None, what: str, warn: bool = True) -> list[torch.device]:
    """``cuda:0..n-1`` for ``num_gpus`` (None: all visible), or ``[cpu]`` without CUDA."""
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if available == 0:
        if num_gpus is not None and warn:
            warn_user(
                f"num_gpus={num_gpus}: CUDA is not available, so {what} runs once on the CPU.",
                RuntimeWarning,
            )
        return [torch.device("cpu")]
    count = available if num_gpus is None else num_gpus
    if count > available:
        raise ValueError(f"num_gpus={count} but only {available} GPU(s) are visible.")
    return [torch.device("cuda", i) for i in range(count)]


def _device_label(device: torch.device, position: int) -> str:
    return f"GPU {device.index}" if device.type == "cuda" else f"{device.type} (worker {position})"


def _spawn_pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing

    # CUDA cannot be used in a forked child.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _run_on_devices(
    func: Callable,
    args: tuple,
    kwargs: dict,
    devices: list[torch.device],
    pass_device: bool,
    pool: ProcessPoolExecutor | None = None,
) -> list[Any]:
    """One call of ``func`` per device; results in device order.

    A lone CPU device runs in this process; otherwise each call runs in a worker process (of
    ``pool``, or of a pool made for this call). Raises ``RuntimeError`` naming every failed device.
    """
    name = getattr(func, "__qualname__", repr(func))
    if pool is None and devices == [torch.device("cpu")]:
        try:
            return [_device_call(func, args, kwargs, devices[0], pass_device)]
        except Exception as err:  # noqa: BLE001 - re-raised naming the device
            raise RuntimeError(f"{name} failed on cpu: {type(err).__name__}: {err}") from err
    ref = _reference(func)
    own = pool is None
    pool = pool if pool is not None else _spawn_pool(len(devices))
    results, errors = [], []
    try:
        futures = [
            pool.submit(_device_worker, ref, args, kwargs, str(d), pass_device) for d in devices
        ]
        for i, (device, future) in enumerate(zip(devices, futures)):
            try:
                results.append(future.result())
            except Exception as err:  # noqa: BLE001 - collected, raised together
                errors.append(f"{_device_label(device, i)}: {err}")
    finally:
        if own:
            pool.shutdown()
    if errors:
        raise RuntimeError(
            f"{name} failed on {len(errors)} of {len(devices)} device(s):\n" + "\n".join(errors)
        )
    return results


def parallelize_on_gpus(num_gpus: int | None = None, pass_device: bool = True) -> Callable:
    """Decorator: call the function once per GPU, each in its own process; results in GPU order.

    With ``pass_device`` the function receives the device as ``device`` (by keyword, or in its
    place when ``device`` is a positional parameter before the arguments given, as in
    ``def f(device, data)``). Results come back on the CPU. Errors raise ``RuntimeError`` naming
    each failed GPU. On a machine without CUDA the function runs once, in this process, on the CPU
    (``device=cpu``), and the list has one result. ``num_gpus=None`` uses every visible GPU.
    """
    _check_num_gpus(num_gpus)

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> list[Any]:
            devices = _target_devices(num_gpus, func.__qualname__)
            return _run_on_devices(func, args, kwargs, devices, pass_device)

        _PARALLEL_WRAPPERS[wrapper] = func
        return wrapper

    return decorator


class ParallelExecutor:
    """Run functions once per GPU in worker processes; a context manager keeps the workers.

    Args:
        num_gpus: GPUs to use (``None``: every visible GPU).
        pass_device: give each call its device, as :func:`parallelize_on_gpus` does.

    ``run(func, *args, **kwargs)`` returns the results in GPU order, on the CPU. Without CUDA the
    function runs once, in this process, on the CPU. Errors raise ``RuntimeError`` naming each
    failed device. ``func`` must be importable by the workers (defined at module level).
    """

    def __init__(self, num_gpus: int | None = None, pass_device: bool = True):
        _check_num_gpus(num_gpus)
        self.num_gpus, self.pass_device = num_gpus, bool(pass_device)
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ParallelExecutor:
        devices = _target_devices(self.num_gpus, "ParallelExecutor", warn=False)
        if devices != [torch.device("cpu")]:
            self._pool = _spawn_pool(len(devices))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (``with`` does it on exit)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def run(self, func: Callable, *args: Any, **kwargs: Any) -> list[Any]:
        """``func(*args, **kwargs)`` once per device; the results in device order."""
        if not callable(func):
            raise TypeError(f"ParallelExecutor.run needs a function, got {func!r}.")
        devices = _target_devices(self.num_gpus, getattr(func, "__qualname__", repr(func)))
        return _run_on_devices(func, args, kwargs, devices, self.pass_device, self._pool)


# ----------------------------------------------------------- parallel_on_all_devices


class _FunctionModule(torch.nn.Module):
    """Lets ``DataParallel`` scatter, run and gather a plain function."""

    def __init__(self, func: Callable):
        super().__init__()
        self.func = func

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)


def _has_tensor(values: Iterable[Any]) -> bool:
    for value in values:
        if isinstance(value, torch.Tensor):
            return True
        if isinstance(value, (list, tuple)) and _has_tensor(value):
            return True
        if isinstance(value, Mapping) and _has_tensor(value.values()):
            return True
    return False


def parallel_on_all_devices(func: Callable) -> Callable:
    """Decorator: split the call's tensors along dim 0 over every CUDA device and gather the
    results (``torch.nn.DataParallel``, in threads of this process).

    ``func`` must be device-aware: take at least one tensor and create new tensors on its
    inputs' device. Without CUDA it is called once, unchanged, on the inputs as given.
    """
    module = _FunctionModule(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not (torch.cuda.is_available() and torch.cuda.device_count() > 0):
            return func(*args, **kwargs)
        if not _has_tensor([*args, *kwargs.values()]):
            raise TypeError(
                f"{func.__qualname__} is decorated with parallel_on_all_devices, which splits "
                "tensor arguments between the GPUs, but it was called without any tensor."
            )
        return torch.nn.DataParallel(module)(*args, **kwargs)

    return wrapper


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
