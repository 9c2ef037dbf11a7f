"""Random number generator states, captured at save and restored at load for an exact resume."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng", "restore_rng", "generator_state", "set_generator_state"]


def capture_rng() -> dict[str, Any]:
    """Python, NumPy, torch (CPU) and CUDA generator states as plain data."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Set every generator ``state`` names (missing parts are left alone)."""
    if "python" in state:
        py = state["python"]
        random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "numpy" in state:
        npst = state["numpy"]
        np.random.set_state(
            {
                "bit_generator": npst["bit_generator"],
                "state": {"key": npst["key"].numpy().astype(np.uint32), "pos": npst["pos"]},
                "has_gauss": npst["has_gauss"],
                "gauss": npst["gauss"],
            }
        )
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def generator_state(loader: Any) -> torch.Tensor | None:
    """State of the ``torch.Generator`` a DataLoader shuffles with, if it has its own."""
    sampler = getattr(loader, "sampler", None)
    gen = getattr(sampler, "generator", None) or getattr(loader, "generator", None)
    return gen.get_state() if isinstance(gen, torch.Generator) else None


def set_generator_state(loader: Any, state: torch.Tensor | None) -> bool:
    sampler = getattr(loader, "sampler", None)
    gen = getattr(sampler, "generator", None) or getattr(loader, "generator", None)
    if state is None or not isinstance(gen, torch.Generator):
        return False
    gen.set_state(state)
    return True
