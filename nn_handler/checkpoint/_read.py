"""Reading checkpoint files safely and saying clearly what a file is when it is not ours."""

from __future__ import annotations

import os
import pickle
import re
import reprlib
import stat
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from .._version import __version__
from ._format import FORMAT_VERSION
from ._scan import NeedsCode, NotOurs, check_file, needs_code

__all__ = [
    "read_file",
    "is_handler_checkpoint",
    "newest_in_directory",
    "describe",
    "require_regular_file",
    "check_format",
    "NeedsCode",
    "NotOurs",
]

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
    path: str,
    map_location: Any = "cpu",
    mmap: bool = False,
    verify: bool = True,
    scan: bool = True,
) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with clear errors; never runs code from the file.

    ``scan`` (off only for a trusted file): before ``torch.load`` the file's pickle globals are
    checked against what nn_handler's checkpoints hold, and its zip entries must be stored
    (uncompressed) and no larger than the file (``_scan``).

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a directory.
        ValueError: not a regular file (a FIFO would block forever), a truncated or corrupted
            file, a pickle that needs code to load (:class:`NeedsCode`), content no checkpoint
            of ours holds (:class:`NotOurs`), or a checkpoint format newer than this version of
            nn_handler reads. Every message names the file.
    """
    require_regular_file(path)
    if scan:
        check_file(path)
    # The checksum pass runs beside torch.load (zlib releases the GIL), so it costs almost no
    # wall time; its verdict is awaited before anything loaded is returned.
    with ThreadPoolExecutor(max_workers=1) as pool:
        verdict = pool.submit(_verify_zip, path) if verify else None
        try:
            obj = _load(path, map_location, mmap)
        finally:
            if verdict is not None:
                verdict.result()  # raises ValueError for a damaged file, replacing any result
    if is_handler_checkpoint(obj):
        check_format(obj, repr(path))
    return obj


def require_regular_file(path: str) -> None:
    """Refuse, before opening it, anything at ``path`` that is not a regular file.

    Raises:
        FileNotFoundError: nothing at ``path``.
        IsADirectoryError: a directory.
        ValueError: a FIFO, socket or device (reading one can block forever).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"Checkpoint file not found: {path!r}.") from None
    except OSError as err:
        raise OSError(err.errno, f"Cannot read checkpoint {path!r}: {err.strerror}", path) from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{path!r} is a directory, not a checkpoint file.")
    if not stat.S_ISREG(mode):
        raise ValueError(
            f"{path!r} is a {_file_kind(mode)}, not a regular file: a checkpoint must be a file "
            "on disk (reading this could block forever). Copy the checkpoint to a file first."
        )


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return kind
    return "special file"


def check_format(ckpt: dict[str, Any], where: str) -> None:
    """Refuse a checkpoint written in a format newer than this version of nn_handler reads.

    Files without ``checkpoint_format`` (written by the original NNHandler) are accepted.

    Raises:
        ValueError: the format is newer than ``FORMAT_VERSION``, or not a format number at all.
    """
    found = ckpt.get("checkpoint_format")
    if found is None:
        return
    if isinstance(found, bool) or not isinstance(found, int) or found < 1:
        raise ValueError(
            f"{where} has checkpoint_format={reprlib.repr(found)}, which is not a format this "
            f"version of nn_handler knows (it reads formats 1 to {FORMAT_VERSION})."
        )
    if found > FORMAT_VERSION:
        raise ValueError(
            f"{where} was written in checkpoint format {reprlib.repr(found)}, newer than format "
            f"{FORMAT_VERSION} that nn_handler {__version__} reads. Upgrade nn_handler "
            "(pip install -U nn-handler) to load it (see its checkpoint_format)."
        )


def _load(path: str, map_location: Any, mmap: bool) -> dict[str, Any]:
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err) or _globals_named(err):
            raise needs_code(path, _globals_named(err)) from None
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
    try:
        if not zipfile.is_zipfile(path):
            return  # not torch's zip format: torch.load says what it is
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except Exception as err:  # noqa: BLE001 - e.g. BadZipFile from a flipped zip64 disk count
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
    """The NNHandler checkpoint in ``directory`` with the most completed epochs.

    Ties go to the most recently modified file (then the name, so the choice is deterministic).
    Auto-saves and manual saves rank alike; files that are not NNHandler checkpoints, hidden
    files (such as the atomic writer's temporary files) and unreadable files are skipped.

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
        candidates.append(((epochs, os.stat(full).st_mtime_ns, name), full))
        del obj
    if not candidates:
        raise FileNotFoundError(f"No NNHandler checkpoint (*.pth, *.pt, *.ckpt) in {directory!r}.")
    return max(candidates)[1]
