"""Lightning ``ModelCheckpoint`` states from a resumed file name no files to delete.

On ``Trainer.fit(module, ckpt_path=...)`` Lightning gives each ``ModelCheckpoint`` the state saved
in the file: ``best_model_path``, ``last_model_path``, ``kth_best_model_path`` and
``best_k_models``. Those paths are what the callback later replaces and deletes (the top-k file
that drops out, the previous ``last.ckpt``), so a file could make Lightning delete any file inside
the user's ``dirpath`` by naming it. A file is data and chooses nothing to delete: before the
callbacks are restored, every such path is dropped (with a warning naming them), because no file
named by a checkpoint was written by the callback in this run. The scores stay; top-k tracking
starts afresh, so the earlier run's files are kept, never removed.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["drop_checkpoint_paths"]

_PATH_KEYS = ("best_model_path", "last_model_path", "kth_best_model_path")


def drop_checkpoint_paths(checkpoint: dict[str, Any]) -> list[str]:
    """Empty the file paths in ``checkpoint["callbacks"]``'s ModelCheckpoint states, in place.

    Returns:
        The paths dropped (a warning names them when there are any).
    """
    states = checkpoint.get("callbacks")
    if not isinstance(states, dict):
        return []
    dropped: list[str] = []
    for state in states.values():
        if not isinstance(state, dict) or "best_model_path" not in state:
            continue
        for key in _PATH_KEYS:
            if state.get(key):
                dropped.append(str(state[key]))
            if key in state:
                state[key] = ""
        if state.get("best_k_models"):
            dropped.extend(str(p) for p in state["best_k_models"])
        if "best_k_models" in state:
            state["best_k_models"] = {}
    dropped = sorted(set(dropped))
    if dropped:
        warnings.warn(
            "The resumed checkpoint's ModelCheckpoint states name files "
            f"({', '.join(map(repr, dropped))}); they are not restored, so that Lightning never "
            "deletes a file this run did not write. Top-k tracking starts again (the earlier "
            "files are kept; delete them yourself when no longer needed).",
            UserWarning,
            stacklevel=2,
        )
    return dropped
