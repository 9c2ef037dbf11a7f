"""Loading saved weights into a bare model: wrapper prefixes, strictness, clear mismatch errors."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["load_weights", "strip_wrappers"]

_WRAPPERS = ("module.", "_orig_mod.")


def strip_wrappers(key: str) -> str:
    """``key`` without leading DDP (``module.``) and ``torch.compile`` (``_orig_mod.``) prefixes."""
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPERS:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key.replace("._orig_mod.", ".")


def _candidates(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    options = [dict(state), {strip_wrappers(k): v for k, v in state.items()}]
    # A LightningModule keeps the network under an attribute (``model.`` for ours).
    heads = {k.split(".", 1)[0] for k in state if "." in k}
    for head in sorted(heads):
        prefix = head + "."
        sub = {
            strip_wrappers(k[len(prefix) :]): v for k, v in state.items() if k.startswith(prefix)
        }
        if sub:
            options.append(sub)
    return options


def match_keys(state: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """The reading of ``state`` whose keys overlap ``target``'s the most."""
    wanted = set(target)
    return max(_candidates(state), key=lambda c: (len(wanted & set(c)), -len(set(c) - wanted)))


def load_weights(
    module: nn.Module, state: Mapping[str, Any], strict: bool, source: str, saved_class: str | None
) -> None:
    """Load ``state`` into ``module``.

    ``strict=True``: any missing, unexpected or mis-shaped key is a ``ValueError``. Otherwise
    what fits is loaded and the rest reported in one warning; if nothing fits at all, it is a
    ``ValueError`` (a checkpoint of another model).
    """
    target = module.state_dict()
    state = match_keys(state, target)
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
        for k in state
        if k in target
        and isinstance(state[k], torch.Tensor)
        and tuple(state[k].shape) != tuple(target[k].shape)
    ]
    fits = {k: v for k, v in state.items() if k in target and not _shape_differs(v, target[k])}
    here = type(module).__qualname__
    origin = f" (saved from {saved_class})" if saved_class else ""
    details = _details(missing, unexpected, mismatched)
    if (missing or unexpected or mismatched) and (strict or (target and not fits)):
        hint = (
            "It looks like a checkpoint of another model class or configuration"
            if not fits or mismatched
            else "Pass strict_load=False to load the matching part"
        )
        raise ValueError(
            f"The weights in {source}{origin} do not fit {here}: {details}. {hint}; check "
            "model_class and the model kwargs."
        )
    module.load_state_dict(fits, strict=False)
    if details:
        warnings.warn(
            f"Loaded {len(fits)}/{len(target)} tensors of {here} from {source}{origin}; {details}.",
            UserWarning,
            stacklevel=3,
        )


def _shape_differs(a: Any, b: Any) -> bool:
    return isinstance(a, torch.Tensor) and tuple(a.shape) != tuple(b.shape)


def _details(missing: list[str], unexpected: list[str], mismatched: list[str]) -> str:
    parts = []
    for label, keys in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("shape mismatch", mismatched),
    ):
        if keys:
            shown = ", ".join(keys[:5]) + (f", ... ({len(keys)} in all)" if len(keys) > 5 else "")
            parts.append(f"{label}: {shown}")
    return "; ".join(parts)
