"""Reading checkpoint files safely and saying clearly what a file is when it is not ours."""

from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

__all__ = ["read_file", "is_handler_checkpoint", "newest_in_directory", "describe"]

_HANDLER_KEYS = ("model_state_dict", "model_class")


def is_handler_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and all(k in obj for k in _HANDLER_KEYS)


def is_lightning_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and "state_dict" in obj and "pytorch-lightning_version" in obj


def is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(k, str) for k in obj)
        and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def describe(obj: Any) -> str:
    """What a loaded object looks like, for error messages."""
    if is_lightning_checkpoint(obj):
        return (
            "a Lightning checkpoint without NNHandler state (it has 'state_dict' and "
            "'pytorch-lightning_version' but no 'model_class'/'model_state_dict')"
        )
    if is_state_dict(obj):
        first = next(iter(obj))
        return f"a bare model state_dict ({len(obj)} tensors, e.g. {first!r})"
    if isinstance(obj, dict):
        keys = sorted(map(str, obj))[:8]
        return f"a dict with keys {keys}{'...' if len(obj) > 8 else ''}"
    return f"a {type(obj).__name__} object"


def read_file(
    path: str, map_location: Any = "cpu", mmap: bool = False, verify: bool = True
) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with clear errors; never runs code from the file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a truncated or corrupted file, or a pickle that needs code to load.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"Checkpoint file not found: {path!r}.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a directory, not a checkpoint file.")
    # The checksum pass runs beside torch.load (zlib releases the GIL), so it costs almost no
    # wall time; its verdict is awaited before anything loaded is returned.
    with ThreadPoolExecutor(max_workers=1) as pool:
        verdict = pool.submit(_verify_zip, path) if verify else None
        try:
            return _load(path, map_location, mmap)
        finally:
            if verdict is not None:
                verdict.result()  # raises ValueError for a damaged file, replacing any result


def _load(path: str, map_location: Any, mmap: bool) -> dict[str, Any]:
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err) or _globals_named(err):
            raise ValueError(
                f"{path!r} is a pickle that needs to run code to load{_globals_named(err)}. "
                "nn_handler only reads files that torch.load(weights_only=True) accepts. If this "
                "is a checkpoint written by the original NNHandler and you trust its source, load "
                "it with NNHandler.load(path, allow_legacy_pickle=True) - this runs code from the "
                "file."
            ) from None
        raise ValueError(
            f"{path!r} is truncated or corrupted and cannot be read as a checkpoint "
            f"({_unpickler_reason(err)})."
        ) from None
    except (PermissionError, FileNotFoundError):
        raise  # already name the file and say what is wrong; not a damaged file
    except Exception as err:  # noqa: BLE001 - whatever a damaged file triggers, name the file
        raise ValueError(
            f"{path!r} is truncated or corrupted and cannot be read as a checkpoint "
            f"({type(err).__name__}: {_first_line(err)})."
        ) from None


def _verify_zip(path: str) -> None:
    """Check every record's CRC-32: torch.load itself would load flipped tensor bytes silently."""
    if not zipfile.is_zipfile(path):
        return  # not torch's zip format: torch.load below says what it is
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"{path!r} is truncated or corrupted and cannot be read as a checkpoint "
            f"({type(err).__name__}: {_first_line(err)})."
        ) from None
    if bad is not None:
        raise ValueError(
            f"{path!r} is corrupted: the checksum of its record {bad!r} does not match "
            "(a damaged copy or disk); restore it from another copy."
        )


def _globals_named(err: BaseException) -> str:
    found = sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(err))))
    return f" (it references {', '.join(found)})" if found else ""


def _unpickler_reason(err: BaseException) -> str:
    found = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
    return found.group(1).strip() if found else _first_line(err)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def newest_in_directory(directory: str) -> str:
    """The checkpoint in ``directory`` with the most epochs recorded inside (auto-saves first).

    Raises:
        FileNotFoundError: no readable NNHandler checkpoint in the directory.
    """
    candidates = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith((".pth", ".pt", ".ckpt")) or name.startswith("."):
            continue
        full = os.path.join(directory, name)
        if not os.path.isfile(full):
            continue
        try:
            # No checksum pass while only peeking at the epoch count; the chosen file gets one.
            obj = read_file(full, "cpu", mmap=True, verify=False)
        except ValueError as err:
            warnings.warn(f"Skipping {full!r}: {err}", UserWarning, stacklevel=3)
            continue
        if not is_handler_checkpoint(obj):
            continue
        epochs = len(obj.get("train_losses") or [])
        step = int(obj.get("global_step", obj.get("handler_global_step", 0)) or 0)
        auto = bool(obj.get("auto_saved", False))
        candidates.append(((auto, epochs, step, os.path.getmtime(full)), full))
        del obj
    if not candidates:
        raise FileNotFoundError(f"No NNHandler checkpoint (*.pth, *.pt, *.ckpt) in {directory!r}.")
    return max(candidates)[1]
