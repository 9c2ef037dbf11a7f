"""Device resolution and moving batches to a device."""

from __future__ import annotations

from typing import Any

import torch

from .dist_env import DistEnv
from .user_warnings import warn_user

__all__ = ["device_for_rank", "resolve_device", "to_cpu", "to_device"]


def device_for_rank(device: torch.device, dist: DistEnv) -> torch.device:
    """Under DDP each process uses its local GPU (or the CPU)."""
    if dist.distributed and device.type == "cuda":
        return torch.device("cuda", dist.local_rank)
    return device


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Return a ``torch.device`` (``"gpu"`` means ``"cuda"``); CUDA asked for on a machine
    without it falls back to CPU.

    The fall-back is warned, not silent, so a script written on a GPU machine still runs on a
    laptop.
    """
    if device is None:
        return torch.device("cpu")
    if isinstance(device, str) and device.strip().lower() == "gpu":
        device = "cuda"  # the original's alias
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"Invalid device {device!r}; use 'cpu', 'cuda', 'cuda:N' or a torch.device."
        ) from err
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            warn_user(
                f"device={str(device)!r} was requested but CUDA is not available; using the CPU.",
                UserWarning,
            )
            return torch.device("cpu")
        index = resolved.index if resolved.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={str(device)!r} but only {torch.cuda.device_count()} CUDA device(s) exist."
            )
        return torch.device("cuda", index)
    return resolved


def to_device(data: Any, device: torch.device) -> Any:
    """Move tensors inside nested lists, tuples and dicts to ``device``."""
    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=True)
    if isinstance(data, (list, tuple)):
        moved = [to_device(x, device) for x in data]
        return type(data)(moved) if isinstance(data, list) else tuple(moved)
    if isinstance(data, dict):
        return {k: to_device(v, device) for k, v in data.items()}
    return data


def to_cpu(data: Any) -> Any:
    """Detached CPU copies of the tensors inside nested lists, tuples and dicts."""
    if isinstance(data, torch.Tensor):
        return data.detach().cpu()
    if isinstance(data, (list, tuple)):
        return type(data)(to_cpu(x) for x in data)
    if isinstance(data, dict):
        return {k: to_cpu(v) for k, v in data.items()}
    return data
