"""Functions run by the per-device worker processes in the parallel-helper tests (importable)."""

from __future__ import annotations

import os

import torch


def where(device: torch.device, tag: str) -> tuple[str, str, int]:
    return str(device), tag, os.getpid()


def doubled(device: torch.device, data: torch.Tensor) -> torch.Tensor:
    return data.to("cpu") * 2 + (1 if device.type == "meta" else 0)


def fail_on_meta(device: torch.device) -> str:
    if device.type == "meta":
        raise ValueError("no data on the meta device")
    return str(device)
